/**
 * A typed view of the cache: keys and values are Schemas. Keys are canonical-JSON encoded and
 * hashed (structurally equal keys share one entry whatever their property order); values are
 * Schema-encoded to JSON, and rejected before anything is written when JSON cannot carry them
 * faithfully. Tenants partition a keyspace so that no tenant id, whatever characters it holds,
 * can reach another tenant's entries.
 *
 * @since 0.1.0
 */
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import type * as Schema from "effect/Schema"
import type { Cached, DistributedCache } from "./DistributedCache.js"
import type { CacheBackendUnavailable, CacheEntryInvalid, CacheValueInvalid } from "./errors.js"
import * as internal from "./internal/keyspace.js"

/**
 * Options of {@link make}.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import type { Keyspace } from "effect-failclosed"
 *
 * const options: Keyspace.KeyspaceOptions<string, string, number, number> = {
 *   name: "scores",
 *   key: Schema.String,
 *   value: Schema.Number,
 *   timeToLive: "10 minutes",
 *   maxValueBytes: 1024
 * }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface KeyspaceOptions<K, KI, V, VI> {
  /** names the keyspace; part of every key (1 to 128 characters) */
  readonly name: string
  /** Schema of keys; encoded, canonicalised and hashed */
  readonly key: Schema.Schema<K, KI, never>
  /** Schema of values; encoded to JSON on write and decoded on read */
  readonly value: Schema.Schema<V, VI, never>
  /** default time to live of entries (`Duration.infinity` for none) */
  readonly timeToLive: Duration.DurationInput
  /** largest encoded value accepted, in bytes (default 1 MiB) */
  readonly maxValueBytes?: number | undefined
  /** largest encoded key accepted, in bytes of canonical JSON (default 8 KiB) */
  readonly maxKeyBytes?: number | undefined
  /** longest tenant id accepted, in UTF-16 code units (default 256) */
  readonly maxTenantLength?: number | undefined
  /**
   * opt-in near (in-process) cache in front of Redis, kept coherent by Redis' invalidations and served only while
   * this node can prove it receives them (see {@link NearCacheOptions})
   */
  readonly nearCache?: NearCacheOptions | undefined
}

/**
 * Options of a keyspace's near cache: an in-process copy of recently read and written entries in front of Redis.
 * Redis itself (`CLIENT TRACKING`) tells every node when an entry changes (a write, delete, expiry or eviction by
 * anyone, or a flush), and a node serves its copy only while it can prove that it receives those invalidations: its
 * invalidation connection is up, tracking is on, and a heartbeat was answered within `maxStaleness`. When the proof
 * lapses the near cache is emptied and reads go to Redis, where the mode decides. `LocalOnly` caches never use it.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Keyspace } from "effect-failclosed"
 *
 * const Profiles = Keyspace.make({
 *   name: "profiles",
 *   key: Schema.String,
 *   value: Schema.Struct({ name: Schema.String }),
 *   timeToLive: "10 minutes",
 *   nearCache: { capacity: 10_000, maxStaleness: "1 second" }
 * })
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export interface NearCacheOptions {
  /** entries held at most, least recently used out first (within capacity / 8, as LocalOnly) */
  readonly capacity: number
  /** the longest a near entry is kept (default: the keyspace's timeToLive) */
  readonly timeToLive?: Duration.DurationInput | undefined
  /** how old the last proof of coherence may be for a near hit (default 1 second) */
  readonly maxStaleness?: Duration.DurationInput | undefined
}

/**
 * Per-call options. `tenant` selects a partition; omitted, the untenanted partition.
 *
 * @example
 * ```ts
 * import type { Keyspace } from "effect-failclosed"
 *
 * const forTenant = (tenant: string): Keyspace.TenantOptions => ({ tenant })
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface TenantOptions {
  readonly tenant?: string | undefined
}

/**
 * Options of `set`.
 *
 * @example
 * ```ts
 * import type { Keyspace } from "effect-failclosed"
 *
 * const shortLived: Keyspace.SetOptions = { tenant: "acme", timeToLive: "30 seconds" }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface SetOptions extends TenantOptions {
  /** overrides the keyspace's timeToLive for this entry */
  readonly timeToLive?: Duration.DurationInput | undefined
  /**
   * the entry's tags (at most 64 non-empty strings): `invalidateTag(tag, { tenant })` makes every entry of this
   * keyspace and tenant carrying one of them a miss on every node (docs/tags-and-batches.md)
   */
  readonly tags?: ReadonlyArray<string> | undefined
}

/**
 * Options of `setMany`: one tenant and one time to live for the whole batch.
 *
 * @example
 * ```ts
 * import type { Keyspace } from "effect-failclosed"
 *
 * const batch: Keyspace.SetManyOptions = { tenant: "acme", timeToLive: "5 minutes" }
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export interface SetManyOptions extends TenantOptions {
  /** overrides the keyspace's timeToLive for every entry of the batch */
  readonly timeToLive?: Duration.DurationInput | undefined
}

/**
 * Options of `clear`: one tenant's partition (`tenant`), the untenanted partition (nothing),
 * or the whole keyspace, every tenant included (`allTenants: true`).
 *
 * @example
 * ```ts
 * import type { Keyspace } from "effect-failclosed"
 *
 * const oneTenant: Keyspace.ClearOptions = { tenant: "acme" }
 * const everyTenant: Keyspace.ClearOptions = { allTenants: true }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface ClearOptions extends TenantOptions {
  readonly allTenants?: boolean | undefined
}

/**
 * Options of `getOrCompute`. Without `lock`, `staleWhileRevalidate` and `staleIfError` it takes its plain path: one
 * computation per key per process, no stale value ever. See docs/stampedes.md for what each option costs.
 *
 * @example
 * ```ts
 * import type { Keyspace } from "effect-failclosed"
 *
 * // do not cache empty results
 * const options: Keyspace.GetOrComputeOptions<ReadonlyArray<string>> = { shouldCache: (rows) => rows.length > 0 }
 * // one computation across every node; serve the old value while refreshing, or when the computation fails
 * const underPressure: Keyspace.GetOrComputeOptions<ReadonlyArray<string>> = {
 *   lock: true,
 *   staleWhileRevalidate: "30 seconds",
 *   staleIfError: "10 minutes"
 * }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface GetOrComputeOptions<V> extends TenantOptions {
  /**
   * overrides the keyspace's timeToLive for the computed entry; a function of the computed value lets the value
   * decide (adaptive caching: `(user) => user.vip ? "1 minute" : "1 hour"`)
   */
  readonly timeToLive?: Duration.DurationInput | ((value: V) => Duration.DurationInput) | undefined
  /**
   * the computed entry's tags (see {@link SetOptions}), or a function of the computed value giving them
   * (`(user) => ["org:" + user.orgId]`)
   */
  readonly tags?: ReadonlyArray<string> | ((value: V) => ReadonlyArray<string>) | undefined
  /**
   * a fraction of the time to live (0 < x < 1): a hit older than that answers at once with the value it found and
   * starts one background refresh (one per key per process; one across nodes with `lock`). Nobody waits for it; a
   * failing refresh is logged and leaves the value
   */
  readonly refreshAhead?: number | undefined
  /** a computed value is stored only when this returns true (default: always) */
  readonly shouldCache?: ((value: V) => boolean) | undefined
  /**
   * one computation across every node sharing the store: a lock in Redis (SET NX PX with an owner token). In
   * StrictDistributed an unavailable Redis fails the call with `CacheBackendUnavailable`, never a node-local lock
   * (default false: one computation per process)
   */
  readonly lock?: boolean | undefined
  /**
   * with `lock`: the lock's time to live (a holder that died blocks others at most this long) and the longest a caller
   * waits for another node's computation before computing itself (default 5 seconds)
   */
  readonly lockTimeout?: Duration.DurationInput | undefined
  /**
   * past its time to live and within this window, an entry is served at once marked `stale` while one background
   * refresh runs (one across nodes with `lock`); a failed refresh is logged and leaves the stale value
   */
  readonly staleWhileRevalidate?: Duration.DurationInput | undefined
  /**
   * `compute` failed (or ran past `computeTimeout`) and an entry past its time to live by less than this exists: it
   * is served marked `stale`, and the failure is logged. Never for a failure of the store itself
   */
  readonly staleIfError?: Duration.DurationInput | undefined
  /**
   * with `staleIfError` and a stale entry at hand: a computation that runs longer is interrupted and the stale entry
   * served. Without a stale entry the call waits for `compute` (no timeout error is made up)
   */
  readonly computeTimeout?: Duration.DurationInput | undefined
}

/**
 * A typed keyspace. Every operation needs a `DistributedCache`, so the failure policy is the
 * one of the mode Layer provided.
 *
 * @example
 * ```ts
 * import { Effect, Option, Schema } from "effect"
 * import { Keyspace } from "effect-failclosed"
 *
 * const Sessions: Keyspace.Keyspace<string, { readonly user: string }> = Keyspace.make({
 *   name: "sessions",
 *   key: Schema.String,
 *   value: Schema.Struct({ user: Schema.String }),
 *   timeToLive: "1 hour"
 * })
 * const userOf = (sid: string) => Effect.map(Sessions.get(sid), Option.map((c) => c.value.user))
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Keyspace<K, V> {
  readonly name: string
  /**
   * Reads an entry. A stored entry that does not decode fails with `CacheEntryInvalid` (it is
   * never returned); `getOrCompute` cannot fail with it (it recomputes), so its error handling is
   * not `get`'s: a `catchTag("CacheEntryInvalid", …)` on `getOrCompute` does not compile. A tenant id or key that no entry can have (empty tenant, over a limit, a
   * key that does not encode) is a miss, answered without contacting Redis.
   *
   * The value read is deeply frozen in every mode (LocalOnly, Redis, the degraded fallback): the
   * Schema's Type is readonly, and freezing makes that hold at run time (mutating it throws in
   * strict-mode code). In `LocalOnly`, with a value Schema without transformations, an entry is
   * decoded once and every read returns the same frozen value.
   *
   * An entry `getOrCompute` wrote with a stale window is kept past its time to live for callers
   * that asked for stale values; `get` never returns it then: past its time to live it is a miss.
   */
  readonly get: (
    key: K,
    options?: TenantOptions
  ) => Effect.Effect<Option.Option<Cached<V>>, CacheBackendUnavailable | CacheEntryInvalid, DistributedCache>
  /**
   * Writes an entry with a time to live (Redis `PX`). Invalid input (a value JSON cannot carry
   * faithfully, over the size limit, an invalid key, tenant id or timeToLive) fails with
   * `CacheValueInvalid` and nothing is written.
   */
  readonly set: (
    key: K,
    value: V,
    options?: SetOptions
  ) => Effect.Effect<void, CacheBackendUnavailable | CacheValueInvalid, DistributedCache>
  /**
   * Reads many entries: near hits in process, the rest in one round trip (one MGET per Redis node). The answers
   * are in the order of the keys. A key or tenant id no entry can have fails the whole call with
   * `CacheValueInvalid` (its `reason` names the index) before anything is read; a stored entry that does not decode
   * fails it with `CacheEntryInvalid`, as `get` does. One backend answers the batch: in ExplicitDegraded every
   * result of a batch served node-locally is marked `degraded`.
   */
  readonly getMany: (
    keys: ReadonlyArray<K>,
    options?: TenantOptions
  ) => Effect.Effect<
    ReadonlyArray<Option.Option<Cached<V>>>,
    CacheBackendUnavailable | CacheEntryInvalid | CacheValueInvalid,
    DistributedCache
  >
  /**
   * Writes many `[key, value]` entries in one round trip per Redis node. Every element is checked first: one invalid
   * key, value, tenant id or timeToLive fails the call with `CacheValueInvalid` (its `reason` names the index) and
   * nothing is written. Not a transaction: a batch that fails on Redis may have written some entries.
   */
  readonly setMany: (
    entries: ReadonlyArray<readonly [key: K, value: V]>,
    options?: SetManyOptions
  ) => Effect.Effect<void, CacheBackendUnavailable | CacheValueInvalid, DistributedCache>
  /**
   * Makes every entry of this keyspace and tenant written with `tag` a miss, on every node (near caches included,
   * within their `maxStaleness`); entries written afterwards with the tag are visible. One Redis command, whatever
   * the number of entries. Fails closed in every Redis mode (`CacheBackendUnavailable`, ExplicitDegraded included): a
   * deletion that Redis did not confirm is never done only locally. An invalid tag or tenant id fails with
   * `CacheValueInvalid`.
   */
  readonly invalidateTag: (
    tag: string,
    options?: TenantOptions
  ) => Effect.Effect<void, CacheBackendUnavailable | CacheValueInvalid, DistributedCache>
  /** Deletes an entry; true when there was one. Fails closed in every Redis mode. */
  readonly invalidate: (
    key: K,
    options?: TenantOptions
  ) => Effect.Effect<boolean, CacheBackendUnavailable, DistributedCache>
  /**
   * Deletes this keyspace's entries of one partition (see {@link ClearOptions}) with SCAN in
   * batches, never KEYS; returns how many were deleted. Never touches another keyspace or
   * another tenant.
   */
  readonly clear: (options?: ClearOptions) => Effect.Effect<number, CacheBackendUnavailable, DistributedCache>
  /**
   * Returns the cached value or computes, stores and returns it. Concurrent misses for one key
   * in one process share one computation (the first caller's `compute`); a failure of
   * `compute` is returned to every waiter of this process and never cached. A corrupt entry is
   * recomputed and overwritten, so unlike `get` it never fails with `CacheEntryInvalid`. With `lock`, one computation across every node; with
   * `staleWhileRevalidate` / `staleIfError`, an entry past its time to live may be served,
   * marked `stale` (see {@link GetOrComputeOptions} and docs/stampedes.md).
   */
  readonly getOrCompute: <E, R>(
    key: K,
    compute: Effect.Effect<V, E, R>,
    options?: GetOrComputeOptions<V>
  ) => Effect.Effect<Cached<V>, E | CacheBackendUnavailable | CacheValueInvalid, DistributedCache | R>
}

/**
 * Creates a keyspace. Invalid options are a programmer error: a synchronous `Error`, before
 * anything touches Redis.
 *
 * @example
 * ```ts
 * import { Effect, Option, Schema } from "effect"
 * import { Keyspace, LocalOnly } from "effect-failclosed"
 *
 * const Users = Keyspace.make({
 *   name: "users",
 *   key: Schema.Struct({ id: Schema.Number }),
 *   value: Schema.Struct({ name: Schema.String }),
 *   timeToLive: "5 minutes"
 * })
 *
 * const program = Effect.gen(function* () {
 *   yield* Users.set({ id: 1 }, { name: "Ada" }, { tenant: "acme" })
 *   const cached = yield* Users.get({ id: 1 }, { tenant: "acme" })
 *   return Option.map(cached, (c) => c.value.name)
 * }).pipe(Effect.provide(LocalOnly))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: <K, KI, V, VI>(options: KeyspaceOptions<K, KI, V, VI>) => Keyspace<K, V> = internal.make
