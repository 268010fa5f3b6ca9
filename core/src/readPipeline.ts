/**
 * The read pipeline: one path for every read of an entry, near → store → fill, used by `get`, every form of
 * `getOrCompute` (plain, `lock`, stale windows, `shouldCache`), Persistence and KeyValueStore.
 *
 * It does no I/O (the shape of a protocol written "sans I/O"): {@link ReadPipeline.lookup} answers synchronously
 * what can be answered locally (a LocalOnly memory entry, a near hit) and otherwise hands back what the store read
 * needs; the wrapper does the round trip (one Effect) and gives its answer to {@link ReadPipeline.settle}, which
 * decodes it, fills the near cache when the answer may be kept, and reports what happened. Time and decoding come in
 * as functions the wrapper passes (its clock, its Schema); what happened comes back as plain data ({@link Read}).
 *
 * Freshness lives in the entry (the envelope, `envelope.ts`): a sealed entry past `freshUntil` is a miss unless the
 * caller asked for stale values; that holds wherever the entry is read from, the near cache included.
 *
 * A tagged entry (`tags.ts`) carries its tag marks in front of that: it is a value only while every tag's stamp
 * holds the token the entry carries. The stamps known in process come from `PipelineOptions.tags`; a store answer
 * whose stamps are not all known names the stamps to read ({@link ReadPipeline.unknownStamps}), and `settle` takes
 * what the store answered for them. A stamp that is missing or holds another token makes the entry a miss.
 */
import { type Envelope, Invalid, isSealed, unseal } from "./envelope.js"
import { isTagged, readTagged, type TagMark } from "./tags.js"

/** where an answer came from: Redis, the memory of a LocalOnly cache, or the fallback of an ExplicitDegraded one */
export type Backend = "redis" | "local" | "local_degraded"

/** what a store read answered: the raw entry (undefined: none) and where it came from */
export interface StoreEntry {
  readonly value: string | undefined
  readonly backend: Backend
  readonly degraded: boolean
}

/** the entries of a batch read (`MGET`: null for a missing key), all from one backend */
export const storeEntriesOf = (
  values: ReadonlyArray<string | null | undefined>,
  backend: Backend,
  degraded: boolean
): Array<StoreEntry> => values.map((value) => ({ value: value ?? undefined, backend, degraded }))

/** the wrapper's decoder (a Schema): the value, or why the entry is not one */
export type Decode<V> = (json: string) => V | Invalid

/** epoch milliseconds of the wrapper's clock (read only when an entry carries its freshness) */
export type Now = () => number

// --- what a read reports -------------------------------------------------------------------------------------------

/**
 * A value read. `M` is what the wrapper makes of it (its `Cached`, its Effects): a read that answers every read of
 * one entry the same (a LocalOnly entry or a near entry of a shareable decoder, not sealed) is one object, and the
 * wrapper keeps its answer in `memo` so that a hit allocates nothing.
 */
export interface Found<V, M> {
  readonly _tag: "Found"
  readonly value: V
  readonly backend: Backend
  readonly degraded: boolean
  /** answered by this node's near cache (no round trip) */
  readonly near: boolean
  /** past its freshness: returned only to a caller that asked for stale values */
  readonly stale: boolean
  /** a sealed entry's writer's clock at the write (epoch ms); undefined for a plain entry */
  readonly writtenAt: number | undefined
  /** a sealed entry's end of freshness (epoch ms); undefined for a plain entry (fresh while it exists) */
  readonly freshUntil: number | undefined
  /** how old a sealed entry was when read (never negative, whatever the clocks' skew); undefined for a plain entry */
  readonly ageMillis: number | undefined
  /** the wrapper's answer to this read, made on first use */
  memo: M | undefined
}

/** no value: none stored, a sealed entry past its freshness (for a caller that did not ask for stale), or corrupt */
export interface Miss {
  readonly _tag: "Miss"
  readonly backend: Backend
  readonly degraded: boolean
  /** the entry was there but does not decode: why (`get` fails with it; `getOrCompute` recomputes) */
  readonly invalid: Invalid | undefined
}

/** what a read reports */
export type Read<V, M> = Found<V, M> | Miss

const found = <V, M>(
  value: V,
  backend: Backend,
  degraded: boolean,
  near: boolean,
  stale: boolean,
  envelope: Envelope | undefined,
  now: number
): Found<V, M> => ({
  _tag: "Found",
  value,
  backend,
  degraded,
  near,
  stale,
  writtenAt: envelope?.writtenAt,
  freshUntil: envelope?.freshUntil,
  ageMillis: envelope === undefined ? undefined : Math.max(0, now - envelope.writtenAt),
  memo: undefined
})

const missOf = (backend: Backend, degraded: boolean, invalid?: Invalid): Miss => ({
  _tag: "Miss",
  backend,
  degraded,
  invalid
})
/** the misses without a reason, one per backend (a miss allocates nothing) */
const MISS: Record<Backend, Miss> = {
  redis: missOf("redis", false),
  local: missOf("local", false),
  local_degraded: missOf("local_degraded", true)
}

// --- the near cache, as the pipeline sees it -----------------------------------------------------------------------

/** one entry of a near cache: the raw entry as Redis holds it, and what the pipeline decoded of it */
export interface NearEntry<T> {
  readonly json: string
  memo: T | undefined
}

/** the ticket of a near-cache read or write in flight (opaque to the pipeline) */
export interface NearTicket {
  readonly generation: number
}

/**
 * What the pipeline calls on a near cache (a keyspace's in-process copy of Redis, kept coherent by invalidations):
 * the live entry of a key while coherence is proven, the fill of a Redis answer (a read takes a ticket before its
 * round trip; an answer whose ticket an invalidation dirtied is never kept), and own writes (kept at once).
 */
export interface Near<T> {
  /** the live entry of `key` while coherence is proven, else undefined */
  readonly lookup: (key: string) => NearEntry<T> | undefined
  /**
   * the live entry of `key`, no proof checked: only for a caller that has just proven coherence on the same
   * connections (a lookup of another near cache of the same cache, in the same synchronous step)
   */
  readonly peek?: ((key: string) => NearEntry<T> | undefined) | undefined
  /** before a read's round trip */
  readonly beginRead: (key: string) => NearTicket
  /** after it: `json` is what Redis answered (null: no entry; undefined: the read failed or did not reach Redis) */
  readonly endRead: (key: string, ticket: NearTicket, json: string | null | undefined) => NearEntry<T> | undefined
  /** before a write (set, invalidate) is sent */
  readonly beginWrite: (key: string) => NearTicket
  /** after it: `json` the value a successful set wrote to Redis (undefined: an invalidate, or a failed write) */
  readonly endWrite: (
    key: string,
    ticket: NearTicket,
    json: string | undefined,
    ttlMillis: number | undefined
  ) => NearEntry<T> | undefined
  /** every entry of a partition goes (before a clear is sent, and again when it answered) */
  readonly dropPrefix: (prefix: string) => void
  /** counts a read answered near, and one that went to Redis */
  readonly hit: () => void
  readonly miss: () => void
  /** the one Warning to log when the near cache went off or came back since the last call, else undefined */
  readonly transition: () => string | undefined
}

/** the settings of a keyspace's near cache (checked by the wrapper) */
export interface NearSettings {
  /** the keyspace's key prefix: every key it tracks starts with it */
  readonly prefix: string
  /** the keyspace's name, for metrics and logs */
  readonly keyspace: string
  readonly capacity: number
  /** the longest a near entry lives (undefined: no cap beyond Redis' own invalidations) */
  readonly timeToLiveMillis: number | undefined
  readonly maxStalenessMillis: number
}

// --- the pipeline ----------------------------------------------------------------------------------------------------

/** an entry decoded once: its value, its freshness, and the read every fresh hit of it returns */
interface Decoded<V, M> {
  readonly value: V
  readonly envelope: Envelope | undefined
  /** a tagged entry's marks (undefined: untagged) */
  readonly marks: ReadonlyArray<TagMark> | undefined
  /** the stamp keys of `marks` for the entry's key, made on its first check (an entry lives under one key) */
  stampKeys: ReadonlyArray<string> | undefined
  /** plain entries only: the one read of a LocalOnly or near entry */
  shared: Found<V, M> | undefined
}

/** how a read's round trip starts: with the near cache's ticket, or without a near cache */
export type Pending = NearTicket | typeof STORE

/** the round trip of a read without a near cache */
export const STORE: unique symbol = Symbol.for("@effect-failclosed/core/readPipeline/store")

/** true when `lookup` answered (else the wrapper reads the store and calls `settle`) */
export const isRead = <V, M>(step: Read<V, M> | Pending): step is Read<V, M> =>
  step !== STORE && (step as { readonly _tag?: unknown })._tag !== undefined

/** the sources of one pipeline: one keyspace (or adapter) on one cache */
export interface PipelineOptions<V> {
  readonly decode: Decode<V>
  /**
   * true when a decoded value may be shared by every read of one entry (the wrapper's decoder returns deeply frozen
   * values of a Schema without transformations): an entry is then decoded once, not on every read
   */
  readonly shareDecoded: boolean
  /** a synchronous read of node-local memory (a LocalOnly cache): answers every read, never a round trip */
  readonly local?: ((key: string) => StoreEntry | undefined) | undefined
  /** the near cache in front of Redis */
  readonly near?: Near<unknown> | undefined
  /** the stamps of tagged entries (absent: the entries of this pipeline are never tagged, or a tag check fails) */
  readonly tags?: TagStamps | undefined
}

/** where a pipeline finds the stamps of a tagged entry's tags */
export interface TagStamps {
  /** the stamp key of tag `hash` for the entry `entryKey` (in the entry's tenant partition) */
  readonly stampKeyOf: (entryKey: string, hash: string) => string
  /** the token a stamp holds as known in process (null: known to be missing), undefined when not known */
  readonly known: (stampKey: string) => string | null | undefined
  /** the near cache of the stamps, which the wrapper fills with what it reads of them (absent: none) */
  readonly near?: Near<unknown> | undefined
  /**
   * `known` for a near hit: the keyspace's near cache proved coherence on the same connections in this step, so the
   * stamps' near cache is read without proving it again (absent: `known` is asked)
   */
  readonly knownNear?: ((stampKey: string) => string | undefined) | undefined
}

/**
 * One keyspace's reads on one cache: near → store → fill. See the module doc for the division of work with the
 * wrapper.
 */
export class ReadPipeline<V, M = unknown> {
  readonly near: Near<Decoded<V, M>> | undefined
  private readonly local: ((key: string) => StoreEntry | undefined) | undefined
  private readonly decode: Decode<V>
  private readonly shareDecoded: boolean
  /** where this pipeline finds the stamps of tagged entries */
  readonly tags: TagStamps | undefined
  /** what a LocalOnly entry decoded to, kept next to the entry object (the memory store's, one per write) */
  private readonly localDecoded = new WeakMap<StoreEntry, Decoded<V, M>>()

  constructor(options: PipelineOptions<V>) {
    this.decode = options.decode
    this.shareDecoded = options.shareDecoded
    this.local = options.local
    this.near = options.near as Near<Decoded<V, M>> | undefined
    this.tags = options.tags
  }

  /**
   * The stamp keys a store answer needs read before `settle` (a tagged entry whose stamps are not all known in
   * process), or undefined when none is needed.
   */
  unknownStamps(key: string, raw: string | undefined): ReadonlyArray<string> | undefined {
    if (raw === undefined || !isTagged(raw) || this.tags === undefined) return undefined
    const tagged = readTagged(raw)
    if (tagged === undefined) return undefined
    let unknown: Array<string> | undefined
    for (const mark of tagged.marks) {
      const stampKey = this.tags.stampKeyOf(key, mark.hash)
      if (this.tags.known(stampKey) === undefined) (unknown ??= []).push(stampKey)
    }
    return unknown
  }
  /**
   * The stamps a batch read must fetch before it settles: every unknown stamp of the batch's entries, once (one more
   * MGET for all of them), or undefined when every stamp is known.
   */
  unknownStampsOfBatch(keys: ReadonlyArray<string>, entries: ReadonlyArray<StoreEntry>): Array<string> | undefined {
    let unknown: Set<string> | undefined
    for (let i = 0; i < keys.length; i++) {
      for (const stampKey of this.unknownStamps(keys[i]!, entries[i]!.value) ?? [])
        (unknown ??= new Set()).add(stampKey)
    }
    return unknown === undefined ? undefined : Array.from(unknown)
  }

  /**
   * The first step of a read: the answer when one is at hand (a LocalOnly cache's memory, or a near hit), else how
   * the round trip starts (then {@link settle} with the store's answer). `stale`: the caller accepts a value past its
   * freshness (it is marked `stale`).
   */
  lookup(key: string, now: Now, stale: boolean): Read<V, M> | Pending {
    const local = this.local
    if (local !== undefined) {
      const entry = local(key)
      if (entry === undefined || entry.value === undefined) return MISS.local
      let decoded = this.localDecoded.get(entry)
      if (decoded === undefined) {
        const d = this.decoded(entry.value)
        if (d instanceof Invalid) return missOf("local", false, d)
        decoded = d
        if (this.shareDecoded) this.localDecoded.set(entry, decoded)
      }
      return this.judge(decoded, key, undefined, "local", false, false, now, stale, MISS.local)
    }
    const near = this.near
    if (near === undefined) return STORE
    const entry = near.lookup(key)
    if (entry !== undefined) {
      let decoded = entry.memo
      if (decoded === undefined) {
        const d = this.decoded(entry.json)
        if (!(d instanceof Invalid)) {
          decoded = d
          if (this.shareDecoded) entry.memo = decoded
        }
      }
      if (decoded !== undefined) {
        const read = this.judge(decoded, key, undefined, "redis", false, true, now, stale, undefined)
        if (read !== undefined) {
          near.hit()
          return read
        }
      }
      // corrupt, past its freshness for a caller that did not ask for stale, or tagged with a stamp not known (or not
      // matching) in process: Redis answers (as it would)
    }
    near.miss()
    return near.beginRead(key)
  }

  /**
   * The second step: the store's answer (undefined: the read failed) to the round trip `pending` started. A clean
   * answer from Redis fills the near cache; what it holds is reported. `stamps`: what the store answered for the
   * stamps {@link unknownStamps} named (a tagged entry with a stamp known nowhere is a miss).
   */
  settle(
    key: string,
    pending: Pending,
    entry: StoreEntry | undefined,
    now: Now,
    stale: boolean,
    stamps?: ReadonlyMap<string, string | null>
  ): Read<V, M> {
    const near = pending === STORE ? undefined : this.near
    if (entry === undefined) {
      near?.endRead(key, pending as NearTicket, undefined)
      return MISS.redis
    }
    const raw = entry.value
    if (raw === undefined) {
      near?.endRead(key, pending as NearTicket, entry.backend === "redis" ? null : undefined)
      return MISS[entry.backend]
    }
    const decoded = this.decoded(raw)
    if (decoded instanceof Invalid) {
      near?.endRead(key, pending as NearTicket, undefined)
      return missOf(entry.backend, entry.degraded, decoded)
    }
    if (near !== undefined) {
      const kept = near.endRead(key, pending as NearTicket, entry.backend === "redis" ? raw : undefined)
      // the near entry and this caller share one decoded value (the wrapper's decoder froze it)
      if (kept !== undefined && this.shareDecoded) kept.memo = decoded
    }
    return this.judge(decoded, key, stamps, entry.backend, entry.degraded, false, now, stale, MISS[entry.backend])!
  }

  /** before a write of `key` is sent (set, invalidate): the near entry goes, reads in flight may not fill it */
  beginWrite(key: string): NearTicket | undefined {
    return this.near?.beginWrite(key)
  }

  /** after the write: `json` is what a successful set wrote to Redis (kept near at once), else undefined */
  endWrite(key: string, ticket: NearTicket | undefined, json: string | undefined, ttlMillis: number | undefined) {
    if (ticket !== undefined) this.near?.endWrite(key, ticket, json, ttlMillis)
  }

  /** the raw entry decoded: its value and freshness, or why it is not one */
  private decoded(raw: string): Decoded<V, M> | Invalid {
    if (!isTagged(raw)) return this.decodedUntagged(raw, undefined)
    const tagged = readTagged(raw)
    if (tagged === undefined) return new Invalid("the stored entry's tags are corrupt")
    return this.decodedUntagged(tagged.entry, tagged.marks)
  }

  /** an entry under its tags (if any): plain or sealed */
  private decodedUntagged(raw: string, marks: ReadonlyArray<TagMark> | undefined): Decoded<V, M> | Invalid {
    let envelope: Envelope | undefined
    let json = raw
    if (isSealed(raw)) {
      envelope = unseal(raw)
      if (envelope === undefined) return new Invalid("the stored entry's envelope is corrupt")
      json = envelope.json
    }
    const decode = this.decode
    const value = decode(json)
    if (value instanceof Invalid) return value
    return { value, envelope, marks, stampKeys: undefined, shared: undefined }
  }

  /** true when every stamp of a tagged entry holds the entry's token (known in process, or just read) */
  private tagsHold(
    decoded: Decoded<V, M>,
    key: string,
    stamps: ReadonlyMap<string, string | null> | undefined,
    nearHit: boolean
  ): boolean {
    const tags = this.tags
    const marks = decoded.marks!
    if (tags === undefined) return false
    const knownNear = nearHit ? tags.knownNear : undefined
    // a near entry's hits check the same stamps every time: their keys are made once (a loop, no closure: a near hit
    // of a tagged entry costs a Map lookup per tag more than an untagged one)
    const stampKeys = (decoded.stampKeys ??= marks.map((mark) => tags.stampKeyOf(key, mark.hash)))
    for (let i = 0; i < marks.length; i++) {
      const stampKey = stampKeys[i]!
      let token = knownNear === undefined ? tags.known(stampKey) : knownNear(stampKey)
      if (token === undefined) token = stamps?.get(stampKey)
      if (token !== marks[i]!.token) return false
    }
    return true
  }

  /** a decoded entry at `now`: fresh, stale (only when asked for), or `past` (also: its tags no longer hold) */
  private judge<P extends Miss | undefined>(
    decoded: Decoded<V, M>,
    key: string,
    stamps: ReadonlyMap<string, string | null> | undefined,
    backend: Backend,
    degraded: boolean,
    near: boolean,
    now: Now,
    stale: boolean,
    past: P
  ): Found<V, M> | P {
    if (decoded.marks !== undefined && !this.tagsHold(decoded, key, stamps, near)) return past
    const envelope = decoded.envelope
    if (envelope === undefined) {
      // plain: fresh while it exists. A LocalOnly or near entry answers every read with one object.
      if (backend === "redis" && !near) return found(decoded.value, backend, degraded, false, false, undefined, 0)
      return (decoded.shared ??= found(decoded.value, backend, degraded, near, false, undefined, 0))
    }
    const at = now()
    if (at < envelope.freshUntil) return found(decoded.value, backend, degraded, near, false, envelope, at)
    if (!stale) return past
    return found(decoded.value, backend, degraded, near, true, envelope, at)
  }
}
