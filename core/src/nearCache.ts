/**
 * The near cache of one keyspace on one Redis-mode cache: a bounded LRU of encoded entries in front of Redis, kept
 * coherent by the cache's tracking connections (`NearTracking`: the Effect package's Redis tracking) and served only
 * while they prove
 * that they receive every invalidation. A proof that is only late (a stall, a paused Redis) pauses the near hits and
 * keeps the entries; a lost one (a closed or replaced connection, a restart, new masters) empties them.
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
 *
 * Effect-free: time comes in as a function, the background refill as a callback, counters as plain functions, and
 * the proof's transitions go out as plain events (`transition`). The Effect package binds them to its Metrics,
 * Logger and store.
 * @internal
 */
import { LruOrder } from "./lruOrder.js"
import { nearEventMessage, NearEvents, type NearState } from "./nearEvents.js"
import type { Near, NearEntry as CoreNearEntry, NearSettings, NearTicket } from "./readPipeline.js"

/** what a near cache hears from its tracking connections */
export interface TrackingListener {
  /** keys of this listener's prefix changed (written, deleted, expired, evicted) */
  readonly invalidated: (key: string) => void
  /** every entry is to be dropped: a flush, or coherence was lost */
  readonly flushed: () => void
  /** the proof moved to `state` (on: near hits served; paused: kept, not served; off: lost and emptied) */
  readonly changed: (state: NearState, reason: string) => void
}

/** what a near cache asks of its tracking connections (the Effect package's `Tracking`) */
export interface NearTracking {
  /** bumped at every loss of coherence: a ticket of an older generation never stores */
  readonly generation: number
  /** registers a near cache: its prefix (tracked), its bound, and its keyspace's name (reported by the health check) */
  readonly register: (prefix: string, maxStalenessMillis: number, listener: TrackingListener, keyspace: string) => void
  /** whether a near hit within `maxStalenessMillis` may be served at `now` */
  readonly proven: (maxStalenessMillis: number, now?: number) => boolean
  /** a near cache found its proof lapsed at `now`: near hits pause, a heartbeat goes out */
  readonly lapsed: (prefix: string, maxStalenessMillis: number, now: number) => void
}

/**
 * A plain read of one key for a background refill: `done` gets what Redis holds (null: nothing), or undefined when
 * Redis did not answer it (an open breaker, a failure).
 */
export type NearRefill = (key: string, done: (json: string | null | undefined) => void) => void

/** the near cache's counters (the Effect package's Metrics) */
export interface NearCounters {
  readonly hit: () => void
  readonly miss: () => void
  readonly evicted: () => void
  readonly flushed: () => void
}

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
 * The near cache of one keyspace on one cache, used by the read pipeline (`ReadPipeline`) through `Near`.
 * @internal
 */
export class NearCache<T = unknown> implements Near<T>, TrackingListener {
  private readonly entries = new Map<string, NearEntry<T>>()
  private readonly inflight = new Map<string, Ticket>()
  private readonly ownWrites = new Set<string>()
  private readonly maxStaleness: number
  private readonly order: LruOrder<string, NearEntry<T>>
  /** the transitions of the proof, reported at most once a second (the read path logs them) */
  private readonly events: NearEvents
  readonly hit: () => void
  readonly miss: () => void
  private readonly evicted: () => void
  private readonly flushedMetric: () => void

  constructor(
    readonly tracking: NearTracking,
    readonly settings: NearSettings,
    private readonly read: NearRefill,
    counters: NearCounters,
    /** monotonic milliseconds (performance.now) */
    private readonly now: () => number
  ) {
    this.maxStaleness = settings.maxStalenessMillis
    this.order = new LruOrder(this.entries, settings.capacity)
    this.events = new NearEvents(now)
    this.hit = counters.hit
    this.miss = counters.miss
    this.evicted = counters.evicted
    this.flushedMetric = counters.flushed
    tracking.register(settings.prefix, settings.maxStalenessMillis, this, settings.keyspace)
  }

  get size(): number {
    return this.entries.size
  }

  /**
   * The one Warning to log now about this keyspace's proof of coherence (paused, emptied, serves again), else
   * undefined: at most one per second, a flapping proof's transitions counted in it (core's NearEvents).
   */
  transition(): string | undefined {
    if (!this.events.pending) return undefined
    const event = this.events.take()
    return event === undefined ? undefined : nearEventMessage(this.settings.keyspace, event)
  }

  /**
   * The live entry of `key` while coherence is proven, else undefined. A lapsed proof pauses near hits (the entries
   * are kept, a heartbeat goes out now): a loss of coherence empties the cache through `flushed`, never a lapse.
   */
  lookup(key: string): NearEntry<T> | undefined {
    if (this.entries.size === 0) return undefined
    const now = this.now()
    if (!this.tracking.proven(this.maxStaleness, now)) {
      this.tracking.lapsed(this.settings.prefix, this.maxStaleness, now)
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
    return entry === undefined || (entry.expiresAt !== Infinity && entry.expiresAt <= this.now()) ? undefined : entry
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

  changed(state: NearState, reason: string): void {
    this.events.note(state, reason)
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
    return (
      !ticket.dirty &&
      ticket.generation === this.tracking.generation &&
      this.tracking.proven(this.maxStaleness, this.now())
    )
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
    const now = this.now()
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
    if (!this.tracking.proven(this.maxStaleness, this.now())) return
    const ticket = this.beginRead(key)
    this.read(key, (json) => this.endRead(key, ticket, json))
  }
}
