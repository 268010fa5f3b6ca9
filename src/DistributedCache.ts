/**
 * The cache service. A mode Layer (`StrictDistributed`, `ExplicitDegraded`, `LocalOnly`)
 * provides it; features (`Keyspace`, `RateLimiter`, `ReplayGuard`) use it. Its low-level
 * operations work on already-encoded store keys and strings; application code normally uses a
 * `Keyspace` instead.
 *
 * @since 0.1.0
 */
import type * as Core from "@effect-failclosed/core"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import type { Near, NearSettings } from "@effect-failclosed/core"
import type { CacheBackendUnavailable } from "./errors.js"

/**
 * The failure policy a cache was composed with.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { CacheModeName } from "effect-failclosed"
 *
 * const isStrict = (mode: CacheModeName) => mode === "StrictDistributed"
 * const decodeMode = Schema.decodeUnknownSync(CacheModeName)
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export const CacheModeName = Schema.Literal("StrictDistributed", "ExplicitDegraded", "LocalOnly")

/**
 * @since 0.1.0
 * @category models
 */
export type CacheModeName = typeof CacheModeName.Type

/**
 * Where a result came from: Redis, the memory of a `LocalOnly` cache, or the node-local
 * fallback of an `ExplicitDegraded` cache while Redis is unavailable.
 *
 * @example
 * ```ts
 * import type { Backend } from "effect-failclosed"
 *
 * const isNodeLocal = (backend: Backend) => backend !== "redis"
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type Backend = "redis" | "local" | "local_degraded"

/**
 * A value together with where it came from and how fresh it is. `degraded` is true exactly when
 * `backend` is `"local_degraded"`. `near` is true when the value came from this node's near cache
 * (a copy of Redis' state, so `backend` is `"redis"`), false for every read that reached Redis,
 * every `LocalOnly` read and every degraded fallback read. `stale` is true only for a value past
 * its time to live, served because the caller asked for it (`getOrCompute`'s
 * `staleWhileRevalidate` or `staleIfError`).
 *
 * @example
 * ```ts
 * import { Duration } from "effect"
 * import type { Cached } from "effect-failclosed"
 *
 * const describe = (c: Cached<string>) =>
 *   c.degraded
 *     ? `${c.value} (node-local, Redis down)`
 *     : c.stale && c.age !== undefined
 *       ? `${c.value} (stale, ${Duration.format(c.age)} old)`
 *       : c.value
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Cached<A> {
  readonly value: A
  readonly backend: Backend
  readonly degraded: boolean
  /** true when the value came from this node's near cache (see docs/near-cache.md) */
  readonly near: boolean
  /** true only for a value past its time to live, served because the caller asked for it */
  readonly stale: boolean
  /**
   * how long ago the entry was written, when the entry records it: entries written by `getOrCompute` with a stale
   * window (see docs/stampedes.md) do; other entries do not, and their age is undefined
   */
  readonly age?: Duration.Duration | undefined
}

/**
 * Counters of one cache (one Layer instance, one process).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { DistributedCache } from "effect-failclosed"
 *
 * const hitRate = Effect.flatMap(DistributedCache, (cache) => cache.stats).pipe(Effect.map((s) => s.hitRate))
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface CacheStats {
  readonly mode: CacheModeName
  /** the backend that serves now */
  readonly backend: Backend
  readonly degraded: boolean
  readonly hits: number
  readonly misses: number
  /** hits / (hits + misses), 0 before any read */
  readonly hitRate: number
  /** operations that failed or fell back because Redis was unavailable */
  readonly failures: number
  /** entries held node-locally (LocalOnly memory, or the degraded fallback) */
  readonly localEntries: number
}

/**
 * What one cache knows of its own health, now (what `Health.check` reports, with a status): where
 * it serves from, whether Redis answers, the cooldown breaker of each failure domain, and whether
 * each near cache may serve. It holds no URL, address, password, key or tenant id.
 *
 * @example
 * ```ts
 * import type { CacheHealth } from "effect-failclosed"
 *
 * const anyCooldown = (health: CacheHealth) => health.breakers.some((b) => b.open)
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export interface CacheHealth {
  readonly mode: CacheModeName
  /** the backend that serves now */
  readonly backend: Backend
  /**
   * Redis answered a `PING` within `commandTimeout` (sent beside the breaker: it neither waits for
   * a cooldown nor ends one); null for `LocalOnly`, which never uses Redis
   */
  readonly reachable: boolean | null
  /**
   * The cooldown breaker of each failure domain: `"all"` for the whole store (a single Redis or
   * Sentinel: the only one), and in a Redis Cluster each shard that served traffic, by its slot
   * range (`"slots 0-5460"`). `open`: in a cooldown after a failure, Redis not contacted. Empty
   * for `LocalOnly`.
   */
  readonly breakers: ReadonlyArray<{ readonly domain: string; readonly open: boolean }>
  /**
   * Each keyspace with a near cache on this cache, and whether it may serve near hits now (it
   * proves it hears Redis' invalidations; when not, its reads go to Redis).
   */
  readonly nearCaches: ReadonlyArray<{ readonly keyspace: string; readonly proven: boolean }>
}

/**
 * Rate-limit algorithms.
 *
 * @example
 * ```ts
 * import type { RateLimitAlgorithm } from "effect-failclosed"
 *
 * const algorithm: RateLimitAlgorithm = "sliding-window"
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type RateLimitAlgorithm = Core.RateLimitAlgorithm

/**
 * One rate-limit decision to be taken atomically by the store: `key` is the full store key of the
 * subject (built by `RateLimiter`), then the algorithm, the limit, the window in milliseconds and
 * the cost.
 *
 * @example
 * ```ts
 * import type { RateLimitRequest } from "effect-failclosed"
 *
 * const request: RateLimitRequest = {
 *   key: "fc:{rf:example:-:hash}",
 *   algorithm: "fixed-window",
 *   limit: 10,
 *   windowMillis: 1_000,
 *   cost: 1
 * }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type RateLimitRequest = Core.RateLimitRequest

/**
 * The outcome of a rate-limit decision, as the store takes it (`RateLimiter.RateLimitResult` adds
 * where it was taken).
 *
 * @example
 * ```ts
 * import type { RateLimitDecision } from "effect-failclosed"
 *
 * const status = (decision: RateLimitDecision) => (decision.allowed ? 200 : 429)
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface RateLimitDecision {
  readonly allowed: boolean
  /** the budget left after this decision (never negative) */
  readonly remaining: number
  /** zero when allowed; when denied, how long until the same request could be allowed */
  readonly retryAfter: Duration.Duration
}

/**
 * The service a mode Layer provides.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { DistributedCache, LocalOnly } from "effect-failclosed"
 *
 * // features such as Keyspace are written against these low-level operations
 * const raw = Effect.gen(function* () {
 *   const cache = yield* DistributedCache
 *   yield* cache.set(`${cache.keyPrefix}:~example:k`, "v", 60_000)
 *   return yield* cache.get(`${cache.keyPrefix}:~example:k`)
 * }).pipe(Effect.provide(LocalOnly))
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface DistributedCacheService {
  readonly mode: CacheModeName
  /** the key prefix every store key of this cache starts with (option `keyPrefix`) */
  readonly keyPrefix: string
  readonly stats: Effect.Effect<CacheStats>
  /** this cache's health now; answers within `commandTimeout` and never fails (see `Health.check`) */
  readonly health: Effect.Effect<CacheHealth>
  /** reads a raw entry (counts a hit or a miss); `value` is undefined on a miss. See {@link CacheGet} */
  readonly get: CacheGet
  /** writes a raw entry; ttlMillis a positive integer or undefined for none */
  readonly set: (
    key: string,
    value: string,
    ttlMillis: number | undefined
  ) => Effect.Effect<Cached<void>, CacheBackendUnavailable>
  /**
   * reads many raw entries (counts a hit or a miss each), null for a missing one, in the order of the keys: one MGET
   * per Redis node. One backend answers the whole batch (a batch falls back as a whole in ExplicitDegraded)
   */
  readonly getMany: (
    keys: ReadonlyArray<string>
  ) => Effect.Effect<Cached<ReadonlyArray<string | null>>, CacheBackendUnavailable>
  /** writes many raw entries `[key, value, ttlMillis]`: one round trip per Redis node */
  readonly setMany: (
    entries: ReadonlyArray<readonly [key: string, value: string, ttlMillis: number | undefined]>
  ) => Effect.Effect<Cached<void>, CacheBackendUnavailable>
  /** deletes a raw entry; true when there was one. Never served node-locally by a Redis mode */
  readonly invalidate: (key: string) => Effect.Effect<boolean, CacheBackendUnavailable>
  /** deletes every entry whose store key starts with `prefix` */
  readonly clear: (prefix: string) => Effect.Effect<number, CacheBackendUnavailable>
  /**
   * counts the live entries whose store key starts with `prefix` (SCAN in batches in Redis:
   * O(entries)); fails closed in every Redis mode, like `clear`
   */
  readonly count: (prefix: string) => Effect.Effect<number, CacheBackendUnavailable>
  /** atomically claims a key for ttlMillis; true when it was free */
  readonly claim: (key: string, ttlMillis: number) => Effect.Effect<Cached<boolean>, CacheBackendUnavailable>
  readonly rateLimit: (request: RateLimitRequest) => Effect.Effect<Cached<RateLimitDecision>, CacheBackendUnavailable>
  /**
   * takes the lock `key` for `token` (a value unique to the taker) for ttlMillis; true when it was free. The lock ends
   * with its time to live or when its owner releases it
   */
  readonly acquireLock: (
    key: string,
    token: string,
    ttlMillis: number
  ) => Effect.Effect<Cached<boolean>, CacheBackendUnavailable>
  /** releases the lock `key` if `token` still owns it; true when it did */
  readonly releaseLock: (key: string, token: string) => Effect.Effect<Cached<boolean>, CacheBackendUnavailable>
  /**
   * Opens the near cache of one keyspace on this cache (see docs/near-cache.md): an in-process copy of the keyspace's
   * entries, kept coherent by this cache's Redis invalidation connections (its background refills are admitted by this
   * cache's breaker).
   * `Keyspace` calls it once per near-cache keyspace and cache, and reads through what it returns (the read pipeline
   * of `@effect-failclosed/core`). Absent where there is nothing to keep coherent with (LocalOnly) and in services
   * that do not offer it: their keyspaces read Redis every time.
   */
  readonly nearCache?: ((settings: NearSettings) => Near<unknown>) | undefined
}

/**
 * The raw read of a cache service: an Effect per key, and, for a cache whose store is node-local memory (LocalOnly),
 * the same read without an Effect (`local`: the live entry, the same object for every read of one entry until it is
 * written again, counted as `get` counts). Features read through `local` when it is there. A wrapper that replaces
 * `get` (to count or log reads, say) drops `local` with it, and so sees every read.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { type CacheGet, DistributedCache, LocalOnly } from "effect-failclosed"
 *
 * const readNow = (get: CacheGet, key: string) =>
 *   get.local !== undefined ? Effect.succeed(get.local(key)?.value) : Effect.map(get(key), (c) => c.value)
 * const program = Effect.flatMap(DistributedCache, (cache) => readNow(cache.get, "fc:~example:k")).pipe(
 *   Effect.provide(LocalOnly)
 * )
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export interface CacheGet {
  (key: string): Effect.Effect<Cached<string | undefined>, CacheBackendUnavailable>
  /** the synchronous read of node-local memory (LocalOnly only): the live entry, or undefined */
  readonly local?: ((key: string) => Cached<string> | undefined) | undefined
}

/**
 * The cache service tag.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { DistributedCache, LocalOnly } from "effect-failclosed"
 *
 * const program = Effect.gen(function* () {
 *   const cache = yield* DistributedCache
 *   return yield* cache.stats
 * }).pipe(Effect.provide(LocalOnly))
 * ```
 *
 * @since 0.1.0
 * @category tags
 */
export class DistributedCache extends Context.Tag("effect-failclosed/DistributedCache")<
  DistributedCache,
  DistributedCacheService
>() {}
