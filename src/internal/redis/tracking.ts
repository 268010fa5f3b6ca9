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
 * ready, a PING sent at most `maxStaleness` ago answered). Anything else (a master's connection closed, reconnecting,
 * paused, partitioned, late; the slot map changed or incomplete) is no proof, and every transition bumps
 * `generation` and flushes every near cache: a read that started in one generation never fills a near cache in the
 * next. A key whose slot moved to a master not yet in the set (a MOVED reply updates the client's slot map before
 * its "refresh" event) can be read and stored for at most one heartbeat interval (`maxStaleness / 3`) before the
 * tick sees the new master and flushes: the `maxStaleness` bound holds.
 */
import * as Effect from "effect/Effect"
import { type Cluster, Redis, type RedisOptions } from "ioredis"
import { isCluster, SLOT_COUNT } from "@effect-failclosed/core"
import { TrackingConnection, type TrackingConnectionOwner } from "./trackingConnection.js"

/** what a near cache hears from its tracking connections */
export interface TrackingListener {
  /** keys of this listener's prefix changed (written, deleted, expired, evicted) */
  readonly invalidated: (key: string) => void
  /** every entry is to be dropped: a flush, or the proof of coherence lapsed or came back */
  readonly flushed: () => void
}

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

/** @internal */
export class Tracking {
  /** bumped at every transition (connection lost, tracking enabled, proof lapsed, masters changed, flush) */
  generation = 0
  private readonly listeners = new Map<string, TrackingListener>()
  private connections: Array<TrackingConnection> = []
  /** the masters the connections follow (`host:port,…` for a cluster, "" otherwise); undefined: not known, no proof */
  private masters: string | undefined = undefined
  private watching = false
  private timer: ReturnType<typeof setInterval> | undefined
  private heartbeatMillis = Infinity
  private maxStalenessMillis = Infinity
  private wasProven = false
  private closed = false
  /** why the near caches went off last (for the one Warning log of each keyspace) */
  reason = "not started"
  private readonly owner: TrackingConnectionOwner = {
    prefixes: () => Array.from(this.listeners.keys()),
    enabled: () => {
      // a new incarnation of one connection: nothing read before is known to be current
      this.generation++
      for (const listener of this.listeners.values()) listener.flushed()
    },
    lost: (_, reason) => this.transition(false, reason),
    ended: (connection) => this.replaceLater(connection),
    answered: () => {
      if (!this.wasProven && this.proven(this.maxStalenessMillis)) this.transition(true, "")
    },
    invalidation: (message) => this.onInvalidation(message),
    refused: () => {
      this.reason = "CLIENT TRACKING could not be enabled"
    }
  }
  private readonly onClusterEvent = () => this.followMasters()

  constructor(private readonly client: Redis | Cluster | undefined) {}

  /**
   * Registers a near cache: its keyspace prefix (tracked with BCAST) and its bound. A new prefix (re)opens the
   * connections with every prefix: the near caches start empty.
   */
  register(prefix: string, maxStalenessMillis: number, listener: TrackingListener): void {
    if (this.closed || this.client === undefined) return
    const known = this.listeners.has(prefix)
    this.listeners.set(prefix, listener)
    if (maxStalenessMillis < this.maxStalenessMillis) {
      this.maxStalenessMillis = maxStalenessMillis
      this.heartbeatMillis = Math.max(10, Math.floor(maxStalenessMillis / 3))
      if (this.timer !== undefined) clearInterval(this.timer)
      this.timer = setInterval(() => this.tick(), this.heartbeatMillis)
      this.timer.unref?.()
    }
    if (!known) this.reopen()
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

  /** a near cache found the proof lapsed before its timer did: every near cache is emptied now */
  lapsed(): void {
    if (this.wasProven) this.transition(false, `no heartbeat answered within ${this.maxStalenessMillis} ms`)
  }

  /** whether the near caches were last switched on (see `reason` when not) */
  get on(): boolean {
    return this.wasProven
  }

  close(): void {
    this.closed = true
    if (this.timer !== undefined) clearInterval(this.timer)
    this.timer = undefined
    this.unwatch()
    this.dropAll()
    this.transition(false, "closed")
  }

  private transition(on: boolean, reason: string): void {
    this.wasProven = on
    if (!on) this.reason = reason
    this.generation++
    for (const listener of this.listeners.values()) listener.flushed()
  }

  private dropAll(): void {
    for (const connection of this.connections) connection.drop()
    this.connections = []
    this.masters = undefined
  }

  private reopen(): void {
    if (this.connections.length > 0) {
      this.dropAll()
      this.transition(false, "a near-cache keyspace was added")
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
      this.transition(false, "the cluster slot map does not cover every slot")
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
    this.transition(false, "the cluster's masters changed")
  }

  private tick(): void {
    for (const connection of this.connections) connection.heartbeat()
    this.followMasters()
    if (this.wasProven && !this.proven(this.maxStalenessMillis)) {
      this.transition(false, `no heartbeat answered within ${this.maxStalenessMillis} ms`)
    }
  }

  private onInvalidation(message: unknown): void {
    if (!Array.isArray(message)) {
      // a flush: no key list (of one master: every near cache goes, the keys of the others with it)
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

/**
 * The tracking connections of a Redis-mode cache, made with the cache's Layer and closed with it (opened only when a
 * near-cache keyspace first uses the cache).
 * @internal
 */
export const makeTracking = (client: Redis | Cluster) =>
  Effect.acquireRelease(
    Effect.sync(() => new Tracking(client)),
    (tracking) => Effect.sync(() => tracking.close())
  )
