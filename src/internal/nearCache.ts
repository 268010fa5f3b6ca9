/**
 * The near cache of one keyspace on one Redis-mode cache: a bounded LRU of encoded entries in front of Redis, kept
 * coherent by the cache's tracking connection (`redis/tracking.ts`) and served only while that connection proves
 * that it receives every invalidation.
 *
 * The races, and how each is closed (a conservative eviction is always allowed, a missed one never):
 *
 * - A read's reply (data connection) and an invalidation (tracking connection) travel on different connections.
 *   A read takes a ticket before its GET is sent; an invalidation of the key, a flush or any transition of the
 *   tracking connection (a new `generation`) marks the ticket dirty, and a dirty ticket's reply is returned to its
 *   caller but never stored.
 * - Own writes: a set takes a ticket too (and dirties the tickets of reads already in flight: their replies may
 *   predate the write). When its reply comes back clean the written value is stored at once: read-your-writes with no
 *   round trip. Redis then sends the invalidation of that very write, and it evicts the value like any other: an
 *   invalidation carries no author, and Redis folds every change of a key within one event-loop iteration into one
 *   message (a foreign write right after ours may hide in it), so counting "our" invalidations could miss a foreign
 *   write. Instead, a key written by this node is read again in the background after its invalidation, and that read
 *   (sent after the invalidation arrived, so its reply reflects every write the invalidation covered) refills it.
 * - invalidate and clear evict before the command is sent and again when it answers, dirtying reads in flight.
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Metric from "effect/Metric"
import * as MetricKey from "effect/MetricKey"
import * as MetricLabel from "effect/MetricLabel"
import {
  LruOrder,
  type Near,
  type NearEntry as CoreNearEntry,
  type NearSettings,
  type NearTicket
} from "@effect-failclosed/core"
import type { Tracking, TrackingListener } from "./redis/tracking.js"

/** @internal */
export const NEAR_HITS = MetricKey.counter("effect_failclosed_near_hits", {
  description: "Keyspace reads answered from the node's near cache (no Redis round trip)",
  incremental: true
})
/** @internal */
export const NEAR_MISSES = MetricKey.counter("effect_failclosed_near_misses", {
  description: "Keyspace reads of a near-cache keyspace that went to Redis",
  incremental: true
})
/** @internal */
export const NEAR_EVICTIONS = MetricKey.counter("effect_failclosed_near_evictions", {
  description: "Near-cache entries removed by an invalidation, expiry or the capacity bound",
  incremental: true
})
/** @internal */
export const NEAR_FLUSHES = MetricKey.counter("effect_failclosed_near_flushes", {
  description:
    "Near caches emptied at once: a flush, or the proof of coherence lapsed or came back (connection, restart, heartbeat)",
  incremental: true
})

const counterOf = (key: MetricKey.MetricKey.Counter<number>, keyspace: string) => {
  const metric = Metric.fromMetricKey(MetricKey.taggedWithLabels(key, [MetricLabel.make("keyspace", keyspace)]))
  return (): void => metric.unsafeUpdate(1, [])
}

/**
 * A plain read of one key for a background refill: what Redis holds (null: nothing), or undefined when Redis did not
 * answer it (an open breaker, a failure). Given by the cache service, whose breaker admits it (internal/policy).
 * @internal
 */
export type RefillRead = (key: string) => Effect.Effect<string | null | undefined, unknown>

/** one near entry: the raw entry, and what the read pipeline decoded of it (on the first hit) */
interface NearEntry<T> extends CoreNearEntry<T> {
  readonly expiresAt: number
  /** the recency tick of the entry's place in the LRU order (internal/lruOrder) */
  touched: number
}

/** the ticket of one read or write in flight (reads of one key share one) */
interface Ticket extends NearTicket {
  dirty: boolean
  refs: number
}

/** keys written by this node whose invalidation is awaited (then read again in the background), at most */
const OWN_WRITES_BOUND = 4096

/**
 * The near cache of one keyspace on one cache: made by the cache service (`DistributedCacheService.nearCache`), used
 * by the read pipeline (`@effect-failclosed/core` `ReadPipeline`) through the core's `Near` interface.
 * @internal
 */
export class NearCache<T = unknown> implements Near<T>, TrackingListener {
  private readonly entries = new Map<string, NearEntry<T>>()
  private readonly inflight = new Map<string, Ticket>()
  private readonly ownWrites = new Set<string>()
  private readonly maxStaleness: number
  private readonly order: LruOrder<string, NearEntry<T>>
  /** whether the last Warning this keyspace logged said "on" (undefined before the first time it was on) */
  private announced: boolean | undefined = undefined
  readonly hit: () => void
  readonly miss: () => void
  private readonly evicted: () => void
  private readonly flushedMetric: () => void

  constructor(
    readonly tracking: Tracking,
    readonly settings: NearSettings,
    private readonly read: RefillRead
  ) {
    const { keyspace, prefix } = settings
    this.maxStaleness = settings.maxStalenessMillis
    this.order = new LruOrder(this.entries, settings.capacity)
    this.hit = counterOf(NEAR_HITS, keyspace)
    this.miss = counterOf(NEAR_MISSES, keyspace)
    this.evicted = counterOf(NEAR_EVICTIONS, keyspace)
    this.flushedMetric = counterOf(NEAR_FLUSHES, keyspace)
    tracking.register(prefix, settings.maxStalenessMillis, this)
  }

  get size(): number {
    return this.entries.size
  }

  /**
   * The one Warning to log when this keyspace's near cache was switched off by lost coherence since the last call,
   * and the one when it is back; undefined when nothing changed (or before it was first on).
   */
  transition(): string | undefined {
    const on = this.tracking.on
    if (this.announced === on) return undefined
    const before = this.announced
    this.announced = on
    if (before === undefined) {
      if (!on) this.announced = undefined
      return undefined
    }
    const keyspace = this.settings.keyspace
    return on
      ? `effect-failclosed: the near cache of keyspace "${keyspace}" serves again (coherence proven)`
      : `effect-failclosed: the near cache of keyspace "${keyspace}" is switched off and emptied (${this.tracking.reason}); reads go to Redis`
  }

  /** the live entry of `key` while coherence is proven, else undefined (a lapsed proof empties the cache first) */
  lookup(key: string): NearEntry<T> | undefined {
    if (this.entries.size === 0) return undefined
    const now = performance.now()
    if (!this.tracking.proven(this.maxStaleness, now)) {
      this.tracking.lapsed()
      this.flushed()
      return undefined
    }
    const entry = this.entries.get(key)
    if (entry === undefined) return undefined
    if (entry.expiresAt <= now) {
      this.entries.delete(key)
      this.evicted()
      return undefined
    }
    // least recently used out first, as the memory store does it (see internal/lruOrder)
    this.order.used(key, entry)
    return entry
  }

  /**
   * The live entry of `key` without a proof check or a recency update: for a caller that proved coherence on the same
   * tracking connections in the same synchronous step (a near hit of a tagged entry checking its tags' stamps).
   */
  peek(key: string): NearEntry<T> | undefined {
    const entry = this.entries.get(key)
    // entries without a time to live (the stamps of tags) need no clock read
    return entry === undefined || (entry.expiresAt !== Infinity && entry.expiresAt <= performance.now())
      ? undefined
      : entry
  }

  /** before a read's GET is sent */
  beginRead(key: string): Ticket {
    let ticket = this.inflight.get(key)
    if (ticket === undefined || ticket.generation !== this.tracking.generation) {
      ticket = { dirty: false, refs: 0, generation: this.tracking.generation }
      this.inflight.set(key, ticket)
    }
    ticket.refs++
    return ticket
  }

  /** after a read: `json` is what Redis answered (null: no entry; undefined: the read failed or fell back) */
  endRead(key: string, nearTicket: NearTicket, json: string | null | undefined): NearEntry<T> | undefined {
    const ticket = nearTicket as Ticket
    this.release(key, ticket)
    if (typeof json !== "string" || !this.isClean(ticket)) return undefined
    return this.store(key, json, this.settings.timeToLiveMillis)
  }

  /** before a write (set, invalidate) is sent: the entry goes, and reads in flight may not store what they get */
  beginWrite(key: string): Ticket {
    this.evict(key)
    const ticket: Ticket = { dirty: false, refs: 1, generation: this.tracking.generation }
    this.inflight.set(key, ticket)
    return ticket
  }

  /**
   * After a write. `json`: the value a successful set wrote (stored when nothing changed meanwhile; otherwise read
   * again in the background); undefined for an invalidate or a failed write (the entry is evicted again).
   */
  endWrite(
    key: string,
    nearTicket: NearTicket,
    json: string | undefined,
    ttlMillis: number | undefined
  ): NearEntry<T> | undefined {
    const ticket = nearTicket as Ticket
    const clean = this.isClean(ticket)
    // reads that joined this write's ticket may carry a value from before the write
    ticket.dirty = true
    this.release(key, ticket)
    if (json === undefined) {
      this.evict(key)
      return undefined
    }
    if (!clean) {
      this.refill(key)
      return undefined
    }
    if (this.ownWrites.size >= OWN_WRITES_BOUND) this.ownWrites.clear()
    this.ownWrites.add(key)
    const cap = this.settings.timeToLiveMillis
    return this.store(
      key,
      json,
      cap === undefined ? ttlMillis : ttlMillis === undefined ? cap : Math.min(cap, ttlMillis)
    )
  }

  /** every entry of a partition goes (before a clear is sent, and again when it answers) */
  dropPrefix(prefix: string): void {
    for (const key of this.entries.keys()) if (key.startsWith(prefix)) this.evict(key)
    for (const [key, ticket] of this.inflight) {
      if (key.startsWith(prefix)) {
        ticket.dirty = true
        this.inflight.delete(key)
      }
    }
  }

  // --- TrackingListener ------------------------------------------------------------------------------------------

  invalidated(key: string): void {
    this.evict(key)
    if (this.ownWrites.delete(key)) this.refill(key)
  }

  flushed(): void {
    if (this.entries.size > 0 || this.inflight.size > 0) this.flushedMetric()
    this.entries.clear()
    for (const ticket of this.inflight.values()) ticket.dirty = true
    this.inflight.clear()
    this.ownWrites.clear()
  }

  // ---------------------------------------------------------------------------------------------------------------

  private isClean(ticket: Ticket): boolean {
    return !ticket.dirty && ticket.generation === this.tracking.generation && this.tracking.proven(this.maxStaleness)
  }

  private release(key: string, ticket: Ticket): void {
    if (--ticket.refs <= 0 && this.inflight.get(key) === ticket) this.inflight.delete(key)
  }

  private evict(key: string): void {
    if (this.entries.delete(key)) this.evicted()
    const ticket = this.inflight.get(key)
    if (ticket !== undefined) {
      ticket.dirty = true
      this.inflight.delete(key)
    }
  }

  private store(key: string, json: string, ttlMillis: number | undefined): NearEntry<T> {
    const now = performance.now()
    const entry: NearEntry<T> = {
      json,
      expiresAt: ttlMillis === undefined ? Infinity : now + ttlMillis,
      memo: undefined,
      touched: this.order.stamp()
    }
    this.entries.delete(key)
    if (this.entries.size >= this.settings.capacity) {
      const oldest = this.order.oldest()
      if (oldest !== undefined) {
        this.entries.delete(oldest)
        this.evicted()
      }
    }
    this.entries.set(key, entry)
    return entry
  }

  /** reads `key` again in the background (admitted by the cache's breaker) and stores it if still clean */
  private refill(key: string): void {
    if (!this.tracking.proven(this.maxStaleness)) return
    const ticket = this.beginRead(key)
    Effect.runCallback(this.read(key), {
      onExit: (exit) => this.endRead(key, ticket, Exit.isSuccess(exit) ? exit.value : undefined)
    })
  }
}
