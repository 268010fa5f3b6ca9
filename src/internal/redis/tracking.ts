/**
 * The invalidation connection of the near caches of one Redis-mode cache (one Layer): Redis' own server-assisted
 * client-side caching (`CLIENT TRACKING`) tells this connection about every change to a key of a near-cache keyspace,
 * and a heartbeat proves that it is still listening.
 *
 * One dedicated connection per cache (single node, or the Sentinel master), opened when the first near-cache keyspace
 * registers its prefix:
 *
 *   CLIENT ID                                   -> id
 *   CLIENT TRACKING on REDIRECT id BCAST PREFIX <keyspace prefix> …
 *   SUBSCRIBE __redis__:invalidate
 *
 * RESP2 (ioredis 5) has no push messages on a normal connection, but a connection in Pub/Sub mode that tracking
 * redirects to receives them as messages on `__redis__:invalidate`; the connection may redirect to itself. BCAST keeps
 * no per-key state in Redis (no tracking table that grows with what was read, no per-read command on the data
 * connection, which the store batches and pipelines) and sends, once per Redis event-loop iteration, the keys of the
 * prefixes that changed. A flush (FLUSHALL, FLUSHDB) is a message without keys.
 *
 * Proof of coherence (`proven`): tracking was enabled on this connection incarnation, the connection is ready, and
 * it answered a PING that was sent at most `maxStaleness` ago: Redis writes replies and invalidations to one socket
 * in order, so every invalidation Redis sent before that PONG has been read before it. Anything else (closed,
 * reconnecting, paused, partitioned, late) is no proof, and every transition bumps `generation` and flushes the near
 * caches: a read that started in one generation never fills a near cache in the next.
 *
 * A Redis Cluster has no tracking connection here (one per master would be needed): its near caches never serve.
 */
import * as Effect from "effect/Effect"
import type { Cluster, Redis } from "ioredis"
import type { DistributedCacheService } from "../../DistributedCache.js"
import type { Store } from "../store.js"

/** what a near cache hears from its tracking connection */
export interface TrackingListener {
  /** keys of this listener's prefix changed (written, deleted, expired, evicted) */
  readonly invalidated: (key: string) => void
  /** every entry is to be dropped: a flush, or the proof of coherence lapsed or came back */
  readonly flushed: () => void
}

const CHANNEL = "__redis__:invalidate"
/** pings sent and not answered yet, at most: a black-holed connection does not queue one per tick forever */
const MAX_PINGS_IN_FLIGHT = 8

/** @internal */
export class Tracking {
  /** bumped at every transition (connection lost, tracking enabled, proof lapsed, flush) */
  generation = 0
  private readonly listeners = new Map<string, TrackingListener>()
  private connection: Redis | undefined
  private enabled = false
  /** performance.now() when the last answered PING was sent (on this incarnation, after tracking was enabled) */
  private proofSentAt = -Infinity
  private pingsInFlight = 0
  /** counts the connection's "ready" events: a reply of an earlier incarnation never enables a later one */
  private incarnation = 0
  private timer: ReturnType<typeof setInterval> | undefined
  private heartbeatMillis = Infinity
  private maxStalenessMillis = Infinity
  private wasProven = false
  private closed = false
  /** why the near caches went off last (for the one Warning log of each keyspace) */
  reason = "not started"

  constructor(
    private readonly client: Redis | Cluster | undefined,
    /** a plain read of the store (no breaker, no event): a background refill after an own write */
    readonly read: (key: string) => Effect.Effect<string | null, unknown>
  ) {}

  /**
   * Registers a near cache: its keyspace prefix (tracked with BCAST) and its bound. A new prefix (re)opens the
   * connection with every prefix: the near caches start empty.
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

  /** true while a near hit within `maxStalenessMillis` may be served */
  proven(maxStalenessMillis: number, now: number = performance.now()): boolean {
    return (
      this.enabled &&
      this.connection !== undefined &&
      this.connection.status === "ready" &&
      now - this.proofSentAt <= maxStalenessMillis
    )
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
    this.drop("closed")
  }

  private transition(on: boolean, reason: string): void {
    this.wasProven = on
    if (!on) this.reason = reason
    this.generation++
    for (const listener of this.listeners.values()) listener.flushed()
  }

  private drop(reason: string): void {
    const connection = this.connection
    this.connection = undefined
    this.enabled = false
    this.pingsInFlight = 0
    if (connection !== undefined) {
      connection.removeAllListeners()
      connection.on("error", ignore)
      connection.disconnect(false)
    }
    this.transition(false, reason)
  }

  private reopen(): void {
    if (this.connection !== undefined) this.drop("a near-cache keyspace was added")
    const client = this.client
    if (client === undefined || isCluster(client)) return
    const connection = client.duplicate({
      autoResubscribe: false,
      enableAutoPipelining: false,
      enableOfflineQueue: false,
      lazyConnect: true,
      connectionName: "effect-failclosed:tracking"
    })
    this.connection = connection
    connection.on("error", ignore)
    connection.on("ready", () => this.enable(connection, ++this.incarnation))
    connection.on("close", () => {
      if (this.connection !== connection) return
      this.enabled = false
      this.pingsInFlight = 0
      this.transition(false, "the invalidation connection closed")
    })
    connection.on("messageBuffer", (channel: Buffer, message: unknown) => {
      if (this.connection !== connection || channel.toString() !== CHANNEL) return
      this.onInvalidation(message)
    })
    connection.connect().catch(ignore)
  }

  private enable(connection: Redis, incarnation: number): void {
    const current = () =>
      this.connection === connection && this.incarnation === incarnation && connection.status === "ready"
    const prefixes = Array.from(this.listeners.keys())
    const args: Array<string> = []
    for (const prefix of prefixes) args.push("PREFIX", prefix)
    connection
      .client("ID")
      .then((id) => connection.call("CLIENT", "TRACKING", "on", "REDIRECT", String(id), "BCAST", ...args))
      .then(() => connection.subscribe(CHANNEL))
      .then(
        () => {
          if (!current()) return
          this.enabled = true
          // a new incarnation: nothing read before is known to be current, and no earlier PONG proves anything
          this.proofSentAt = -Infinity
          this.generation++
          for (const listener of this.listeners.values()) listener.flushed()
          this.ping(connection)
        },
        () => {
          // tracking could not be enabled (an ACL without CLIENT, an old Redis): the near caches stay off, and the
          // connection is tried again later
          if (current()) {
            this.reason = "CLIENT TRACKING could not be enabled"
            connection.disconnect(true)
          }
        }
      )
  }

  private ping(connection: Redis): void {
    if (this.pingsInFlight >= MAX_PINGS_IN_FLIGHT) return
    this.pingsInFlight++
    const sentAt = performance.now()
    connection.ping().then(
      () => {
        if (this.connection !== connection) return
        this.pingsInFlight--
        if (!this.enabled) return
        if (sentAt > this.proofSentAt) this.proofSentAt = sentAt
        if (!this.wasProven && this.proven(this.maxStalenessMillis)) this.transition(true, "")
      },
      () => {
        if (this.connection === connection) this.pingsInFlight--
      }
    )
  }

  private tick(): void {
    const connection = this.connection
    if (connection === undefined) return
    if (this.enabled && connection.status === "ready") this.ping(connection)
    if (this.wasProven && !this.proven(this.maxStalenessMillis)) {
      this.transition(false, `no heartbeat answered within ${this.maxStalenessMillis} ms`)
    }
  }

  private onInvalidation(message: unknown): void {
    if (!Array.isArray(message)) {
      // a flush: no key list
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

const ignore = () => {}

const isCluster = (client: Redis | Cluster): client is Cluster => (client as Cluster).isCluster === true

const trackings = new WeakMap<DistributedCacheService, Tracking>()

/**
 * The tracking connection of a Redis-mode cache, made with the cache's Layer and closed with it (opened only when a
 * near-cache keyspace first uses the cache).
 * @internal
 */
export const makeTracking = (client: Redis | Cluster, store: Store) =>
  Effect.acquireRelease(
    Effect.sync(() => new Tracking(client, store.get)),
    (tracking) => Effect.sync(() => tracking.close())
  )

/** @internal */
export const attachTracking = (cache: DistributedCacheService, tracking: Tracking): DistributedCacheService => {
  trackings.set(cache, tracking)
  return cache
}

/**
 * The tracking connection of a cache: undefined for LocalOnly (whose near caches never serve).
 * @internal
 */
export const trackingOf = (cache: DistributedCacheService): Tracking | undefined => trackings.get(cache)
