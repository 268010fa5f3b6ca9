/**
 * The invalidation connections of the near caches of one Redis-mode cache (one Layer): Redis' own server-assisted
 * client-side caching (`CLIENT TRACKING`, broadcast mode) tells them about every change to a key of a near-cache
 * keyspace, and a heartbeat on each proves that it is still listening. One connection is `TrackingConnection`
 * (`trackingConnection.ts`); this module decides how many there are, where they go, and aggregates their proofs.
 *
 * Which connections, opened when the first near-cache keyspace registers its prefix:
 *
 * - a single Redis: one, to it (a duplicate of the data client);
 * - Sentinel: one, to the master (a duplicate of the data client: it asks the sentinels for the master and follows
 *   a failover as the data connection does; a failover closes it, which is a transition);
 * - a Redis Cluster: one per master (per shard, not per node), connected directly to each master that owns slots in
 *   the client's slot map, with the cluster's own per-node options (credentials, TLS, timeouts). Why per master: a
 *   key's invalidations come only from the node that executes its writes, the master that owns its slot (tracking
 *   is local to a node; nothing is broadcast over the cluster bus), and the data client reads from masters only
 *   (`scaleReads: "master"`), so a replica's connection would add nothing but a lag. When the slot map names other
 *   masters (a failover, a resharding; checked on every ioredis "refresh", "+node", "-node" and every heartbeat
 *   tick), the set is rebuilt: connections to masters that left are closed, new ones opened, and that is a
 *   transition.
 *
 * Proof of coherence (`proven`): the set of masters is known, and every connection of it is proven (tracking on,
 * ready, a PING sent at most `maxStaleness` ago answered). Anything else is no proof, and no near hit is served. Two
 * kinds of lapse (see docs/near-cache.md, "A stall pauses, a loss empties"):
 *
 * - a pause: every connection is the incarnation it was, only a PONG is late (this process' event loop stalled,
 *   Redis paused, a partition that TCP outlives). Nothing was lost: every invalidation Redis produced meanwhile waits
 *   in its socket, ahead of the PONG of any PING sent after the lapse, and is applied before that PONG is read. The
 *   near caches keep their entries and serve again when that PONG arrives.
 * - a loss: a connection closed (Redis dropped the client, restarted, the network closed it) or was replaced,
 *   tracking was (re-)enabled on a new incarnation (its `run_id` tells a restart or failover from a reconnect), the
 *   slot map's masters changed or are unknown, a flush. Invalidations may be missing: `generation` is bumped (a read
 *   that started before never fills a near cache after) and every near cache is emptied.
 *
 * A key whose slot moved to a master not yet in the set (a MOVED reply updates the client's slot map before its
 * "refresh" event) can be read and stored for at most one heartbeat interval (`maxStaleness / 3`) before the tick
 * sees the new master and empties the near caches: the `maxStaleness` bound holds.
 * @internal
 */
import { type Cluster, Redis, type RedisOptions } from "ioredis"
import type { NearState } from "../nearEvents.js"
import type { NearTracking, TrackingListener } from "../nearCache.js"
import { isCluster, SLOT_COUNT } from "./cluster.js"
import { TrackingConnection, type TrackingConnectionOwner } from "./trackingConnection.js"

/** the options of a tracking connection, over the data client's own */
const TRACKING_OPTIONS: RedisOptions = {
  autoResubscribe: false,
  enableAutoPipelining: false,
  enableOfflineQueue: false,
  lazyConnect: true,
  connectionName: "effect-failclosed:tracking"
}

/** how long after a connection ended for good (no more reconnects) another one is opened */
const REOPEN_DELAY_MILLIS = 200

/** the cluster events after which the masters in the slot map may have changed */
const CLUSTER_EVENTS = ["refresh", "+node", "-node", "ready"] as const

/**
 * The masters that own slots in a cluster client's slot map (`host:port`, sorted), or undefined while some slot has
 * no owner (the slot map is not known yet). ioredis gives every slot of a range the same array: one comparison per
 * slot.
 */
const mastersOf = (cluster: Cluster): ReadonlyArray<string> | undefined => {
  const slots = cluster.slots
  const masters = new Set<string>()
  let previous: ReadonlyArray<string> | undefined
  for (let slot = 0; slot < SLOT_COUNT; slot++) {
    const owners = slots[slot]
    if (owners === previous && slot > 0) continue
    previous = owners
    const master = owners?.[0]
    if (master === undefined) return undefined
    masters.add(master)
  }
  return Array.from(masters).sort()
}

const addressOf = (master: string): { host: string; port: number } => {
  const colon = master.lastIndexOf(":")
  return { host: master.slice(0, colon), port: Number(master.slice(colon + 1)) }
}

const lateReason = (maxStalenessMillis: number): string => `no heartbeat answered within ${maxStalenessMillis} ms`

/** @internal */
export class Tracking implements NearTracking {
  /** bumped at every loss of coherence (connection lost, tracking enabled, masters changed, flush), not at a pause */
  generation = 0
  private readonly listeners = new Map<string, TrackingListener>()
  private connections: Array<TrackingConnection> = []
  /** the masters the connections follow (`host:port,…` for a cluster, "" otherwise); undefined: not known, no proof */
  private masters: string | undefined = undefined
  private watching = false
  private timer: ReturnType<typeof setInterval> | undefined
  private heartbeatMillis = Infinity
  private maxStalenessMillis = Infinity
  /** each near cache's proof, by prefix: its own bound, and the state last told to it */
  private readonly proofs = new Map<string, { readonly maxStalenessMillis: number; state: NearState }>()
  /** each near cache's keyspace, by prefix: what the health check proves per keyspace */
  private readonly keyspaces = new Map<string, string>()
  private closed = false
  /** the `run_id` each master's connection last saw ("" for the single node or the Sentinel master) */
  private readonly runIds = new Map<string, string>()
  private readonly owner: TrackingConnectionOwner = {
    prefixes: () => Array.from(this.listeners.keys()),
    enabled: (connection, runId) => {
      // a new incarnation of one connection: nothing read before is known to be current
      const before = this.runIds.get(connection.address)
      if (runId !== undefined) this.runIds.set(connection.address, runId)
      this.lose(
        before === undefined
          ? "tracking enabled on a new invalidation connection"
          : runId !== undefined && runId !== before
            ? "Redis restarted or failed over (its run_id changed)"
            : "tracking re-enabled on a new invalidation connection"
      )
    },
    lost: (_, reason) => this.lose(reason),
    ended: (connection) => this.replaceLater(connection),
    answered: () => {
      let resumed = false
      for (const [prefix, proof] of this.proofs) {
        if (proof.state === "on" || !this.proven(proof.maxStalenessMillis)) continue
        if (proof.state === "paused") resumed = true
        this.moveTo(prefix, "on", "")
      }
      const client = this.client
      // back from a pause on a cluster: a master paused meanwhile may have been failed over while its connection
      // stayed open. The slot map is asked again now (not at the next periodic refresh); new masters empty the near
      // caches. Until it answers, a kept entry is what that master itself would answer (every write it executed was
      // invalidated in order): no older than a read the data client would send it
      if (resumed && client !== undefined && isCluster(client)) client.refreshSlotsCache()
    },
    invalidation: (message) => this.onInvalidation(message),
    refused: () => {
      for (const prefix of this.proofs.keys()) this.moveTo(prefix, "off", "CLIENT TRACKING could not be enabled")
    }
  }
  private readonly onClusterEvent = () => this.followMasters()

  constructor(private readonly client: Redis | Cluster | undefined) {}

  /**
   * Registers a near cache: its keyspace prefix (tracked with BCAST) and its bound. A new prefix (re)opens the
   * connections with every prefix: the near caches start empty.
   */
  register(prefix: string, maxStalenessMillis: number, listener: TrackingListener, keyspace: string): void {
    if (this.closed || this.client === undefined) return
    const known = this.listeners.has(prefix)
    this.listeners.set(prefix, listener)
    this.keyspaces.set(prefix, keyspace)
    this.proofs.set(prefix, { maxStalenessMillis, state: this.proofs.get(prefix)?.state ?? "off" })
    if (maxStalenessMillis < this.maxStalenessMillis) {
      this.maxStalenessMillis = maxStalenessMillis
      this.heartbeatMillis = Math.max(10, Math.floor(maxStalenessMillis / 3))
      if (this.timer !== undefined) clearInterval(this.timer)
      this.timer = setInterval(() => this.tick(), this.heartbeatMillis)
      this.timer.unref?.()
    }
    if (!known) this.reopen()
  }

  /** each near cache's keyspace, and whether it may serve a near hit now (for the health check) */
  keyspaceProofs(now: number = performance.now()): Array<{ readonly keyspace: string; readonly proven: boolean }> {
    return Array.from(this.proofs, ([prefix, proof]) => ({
      keyspace: this.keyspaces.get(prefix) ?? "",
      proven: this.proven(proof.maxStalenessMillis, now)
    }))
  }

  /** true while a near hit within `maxStalenessMillis` may be served: every master's connection is proven */
  proven(maxStalenessMillis: number, now: number = performance.now()): boolean {
    const connections = this.connections
    if (connections.length === 0 || this.masters === undefined) return false
    for (let i = 0; i < connections.length; i++) {
      if (!connections[i]!.proven(maxStalenessMillis, now)) return false
    }
    return true
  }

  /**
   * A near cache found the proof lapsed (before the heartbeat timer did, e.g. right after a stall): near hits pause,
   * entries are kept, and a PING goes out now on each connection whose proof lapsed (unless one that can bring it back
   * is on its way), so the proof is back one round trip after the stall instead of at the next tick.
   */
  lapsed(prefix: string, maxStalenessMillis: number, now: number): void {
    for (const connection of this.connections) {
      if (!connection.proven(maxStalenessMillis, now)) connection.heartbeatIfLapsed(maxStalenessMillis, now)
    }
    if (this.proofs.get(prefix)?.state === "on") this.moveTo(prefix, "paused", lateReason(maxStalenessMillis))
  }

  close(): void {
    this.closed = true
    if (this.timer !== undefined) clearInterval(this.timer)
    this.timer = undefined
    this.unwatch()
    this.dropAll()
    this.lose("closed")
  }

  /** coherence was lost: reads in flight may not fill, every near cache is emptied */
  private lose(reason: string): void {
    this.generation++
    for (const listener of this.listeners.values()) listener.flushed()
    for (const prefix of this.proofs.keys()) this.moveTo(prefix, "off", reason)
  }

  /** tells one near cache its proof's new state (an emptying while off is told too: NearEvents counts it) */
  private moveTo(prefix: string, state: NearState, reason: string): void {
    const proof = this.proofs.get(prefix)
    if (proof === undefined || (state === proof.state && state !== "off")) return
    proof.state = state
    this.listeners.get(prefix)?.changed(state, reason)
  }

  private dropAll(): void {
    for (const connection of this.connections) connection.drop()
    this.connections = []
    this.masters = undefined
  }

  private reopen(): void {
    if (this.connections.length > 0) {
      this.dropAll()
      this.lose("a near-cache keyspace was added: tracking is re-enabled with every prefix")
    }
    const client = this.client
    if (client === undefined) return
    if (isCluster(client)) {
      this.watch(client)
      this.followMasters()
    } else {
      this.connections = [this.open("")]
      this.masters = ""
    }
  }

  /** a new connection to `address` (a cluster master), or to what the data client connects to ("") */
  private open(address: string): TrackingConnection {
    const client = this.client!
    const connection = isCluster(client)
      ? new Redis({ ...client.options.redisOptions, ...addressOf(address), ...TRACKING_OPTIONS })
      : client.duplicate(TRACKING_OPTIONS)
    return new TrackingConnection(address, connection, this.owner)
  }

  /** a connection that will not reconnect by itself (a Sentinel client ended by ioredis) is replaced */
  private replaceLater(connection: TrackingConnection): void {
    const timer = setTimeout(() => {
      const i = this.connections.indexOf(connection)
      if (this.closed || i < 0) return
      connection.drop()
      this.connections[i] = this.open(connection.address)
    }, REOPEN_DELAY_MILLIS)
    timer.unref?.()
  }

  private watch(cluster: Cluster): void {
    if (this.watching) return
    this.watching = true
    for (const event of CLUSTER_EVENTS) cluster.on(event, this.onClusterEvent)
  }

  private unwatch(): void {
    const client = this.client
    if (!this.watching || client === undefined || !isCluster(client)) return
    this.watching = false
    for (const event of CLUSTER_EVENTS) client.off(event, this.onClusterEvent)
  }

  /** a cluster: one connection per master of the current slot map; a change of that set is a transition */
  private followMasters(): void {
    const client = this.client
    if (this.closed || client === undefined || !isCluster(client) || this.listeners.size === 0) return
    const masters = mastersOf(client)
    const signature = masters?.join(",")
    if (signature === this.masters) return
    if (masters === undefined) {
      // keep the connections: the slot map may come back with the same masters
      this.masters = undefined
      this.lose("the cluster slot map does not cover every slot")
      return
    }
    const kept: Array<TrackingConnection> = []
    for (const connection of this.connections) {
      if (masters.includes(connection.address)) kept.push(connection)
      else connection.drop()
    }
    for (const master of masters) {
      if (!kept.some((c) => c.address === master)) kept.push(this.open(master))
    }
    this.connections = kept
    this.masters = signature
    this.lose("the cluster's masters changed")
  }

  private tick(): void {
    for (const connection of this.connections) connection.heartbeat()
    this.followMasters()
    // a late heartbeat is a pause: the entries are kept (see the module comment)
    for (const [prefix, proof] of this.proofs) {
      if (proof.state === "on" && !this.proven(proof.maxStalenessMillis)) {
        this.moveTo(prefix, "paused", lateReason(proof.maxStalenessMillis))
      }
    }
  }

  private onInvalidation(message: unknown): void {
    if (!Array.isArray(message)) {
      // a flush: no key list (of one master: every near cache goes, the keys of the others with it). Not a lapse of
      // the proof: the listeners are emptied without a state change
      this.generation++
      for (const listener of this.listeners.values()) listener.flushed()
      return
    }
    for (const item of message) {
      const key = String(item)
      for (const [prefix, listener] of this.listeners) {
        if (key.startsWith(prefix)) listener.invalidated(key)
      }
    }
  }
}
