/**
 * The names every mode and feature of the Effect 4 line shares: the mode names, the backend a result came from, and
 * the `Cached` result. The same names and shapes as `effect-failclosed` (the Effect 3 line).
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import type { Near, NearSettings } from "@effect-failclosed/core"
import type { CacheBackendUnavailable } from "./errors.js"

/**
 * The three modes, as a Schema (security events and errors carry one).
 *
 * @example
 * ```ts
 * import { CacheModeName } from "effect-failclosed-effect4"
 *
 * const mode: CacheModeName = "StrictDistributed"
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export const CacheModeName = Schema.Literals(["StrictDistributed", "ExplicitDegraded", "LocalOnly"])

/**
 * @since 0.1.0
 * @category models
 */
export type CacheModeName = typeof CacheModeName.Type

/**
 * Where a result came from: `"redis"`, `"local"` (LocalOnly) or `"local_degraded"` (ExplicitDegraded's fallback).
 *
 * @example
 * ```ts
 * import type { Backend } from "effect-failclosed-effect4"
 *
 * const backend: Backend = "local_degraded"
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type Backend = "redis" | "local" | "local_degraded"

/**
 * A value with where it came from. `degraded` is true only for the node-local fallback of ExplicitDegraded.
 *
 * @example
 * ```ts
 * import type { Cached } from "effect-failclosed-effect4"
 *
 * const isTrusted = (cached: Cached<unknown>) => !cached.degraded
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Cached<A> {
  readonly value: A
  readonly backend: Backend
  readonly degraded: boolean
  /** true when the value came from this node's near cache */
  readonly near: boolean
  /** true only for a value past its time to live, served because the caller asked for it */
  readonly stale: boolean
  /** how long ago the entry was written, when the entry records it */
  readonly age?: Duration.Duration | undefined
}

/**
 * What a cache reports about itself. `backend` is the one that serves now.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { DistributedCache } from "effect-failclosed-effect4"
 *
 * const hitRate = DistributedCache.use((cache) => cache.stats).pipe(Effect.map((s) => s.hitRate))
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface CacheStats {
  readonly mode: CacheModeName
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
 * The three rate-limit algorithms (the same scripts as the Effect 3 line: one budget across both).
 *
 * @example
 * ```ts
 * import type { RateLimitAlgorithm } from "effect-failclosed-effect4"
 *
 * const algorithm: RateLimitAlgorithm = "sliding-window"
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type RateLimitAlgorithm = "fixed-window" | "sliding-window" | "token-bucket"

/**
 * One rate-limit decision asked of the store (built by `RateLimiter`).
 *
 * @example
 * ```ts
 * import type { RateLimitRequest } from "effect-failclosed-effect4"
 *
 * const request: RateLimitRequest = { key: "fc:{rf:login:-:abc}", algorithm: "fixed-window", limit: 5, windowMillis: 60_000, cost: 1 }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface RateLimitRequest {
  readonly key: string
  readonly algorithm: RateLimitAlgorithm
  readonly limit: number
  readonly windowMillis: number
  readonly cost: number
}

/**
 * A rate-limit decision: allowed, the budget left, and (when denied) how long until the same request could pass.
 *
 * @example
 * ```ts
 * import type { RateLimitDecision } from "effect-failclosed-effect4"
 *
 * const denied = (d: RateLimitDecision) => !d.allowed
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface RateLimitDecision {
  readonly allowed: boolean
  readonly remaining: number
  readonly retryAfter: Duration.Duration
}

/**
 * The cache service every feature is written against: raw entries by full store key, in one mode. Features
 * (`Keyspace`, `RateLimiter`, `ReplayGuard`) build the keys; the mode decides what an unavailable Redis means.
 *
 * @example
 * ```ts
 * import type { DistributedCacheService } from "effect-failclosed-effect4"
 *
 * const modeOf = (cache: DistributedCacheService) => cache.mode
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
   * per Redis node (the core's batch). One backend answers the whole batch (a batch falls back as a whole in
   * ExplicitDegraded)
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
  /** counts the live entries whose store key starts with `prefix` */
  readonly count: (prefix: string) => Effect.Effect<number, CacheBackendUnavailable>
  /** atomically claims a key for ttlMillis; true when it was free */
  readonly claim: (key: string, ttlMillis: number) => Effect.Effect<Cached<boolean>, CacheBackendUnavailable>
  readonly rateLimit: (request: RateLimitRequest) => Effect.Effect<Cached<RateLimitDecision>, CacheBackendUnavailable>
  /** takes the lock `key` for `token` for ttlMillis; true when it was free */
  readonly acquireLock: (
    key: string,
    token: string,
    ttlMillis: number
  ) => Effect.Effect<Cached<boolean>, CacheBackendUnavailable>
  /** releases the lock `key` if `token` still owns it; true when it did */
  readonly releaseLock: (key: string, token: string) => Effect.Effect<Cached<boolean>, CacheBackendUnavailable>
  /**
   * the Redis modes: a near cache for a keyspace (the core's, kept coherent by the core's tracking connections and
   * refilled through this cache's breaker); undefined for LocalOnly
   */
  readonly nearCache?: ((settings: NearSettings) => Near<unknown>) | undefined
}

/**
 * The `get` of a cache: one raw read as an Effect, and on a LocalOnly cache also the synchronous read of its memory
 * (`local`), which the core's read pipeline answers from without a round trip.
 *
 * @example
 * ```ts
 * import type { CacheGet } from "effect-failclosed-effect4"
 *
 * const isLocal = (get: CacheGet) => get.local !== undefined
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
 * The cache service (a `Context.Service`), provided by one of the mode Layers: `StrictDistributed`,
 * `ExplicitDegraded` or `LocalOnly`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { DistributedCache, LocalOnly } from "effect-failclosed-effect4"
 *
 * const stats = DistributedCache.use((cache) => cache.stats).pipe(Effect.provide(LocalOnly))
 * ```
 *
 * @since 0.1.0
 * @category services
 */
export class DistributedCache extends Context.Service<DistributedCache, DistributedCacheService>()(
  "effect-failclosed/DistributedCache"
) {}
