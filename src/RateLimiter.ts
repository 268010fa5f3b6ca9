/**
 * Rate limits kept in the cache's store: one atomic decision per call (one Lua script in Redis,
 * timed by the Redis server's clock), shared by every node that uses the same Redis. What
 * happens when Redis is unavailable is the mode's: `StrictDistributed` never decides without
 * Redis (the call fails with `CacheBackendUnavailable`), `ExplicitDegraded` decides node-locally
 * and marks the result `degraded: true`, `LocalOnly` decides in memory. A decision whose command
 * timed out fails too, even though Redis may have applied it (the budget may then be one cost
 * lower): a limiter errs towards refusing, never towards a decision nobody took.
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import {
  type Backend,
  type Cached,
  type DistributedCache,
  type DistributedCacheService,
  type CacheModeName,
  type RateLimitAlgorithm,
  type RateLimitDecision
} from "./DistributedCache.js"
import { type CacheBackendUnavailable, RateLimitExceeded, RateLimitInputInvalid } from "./errors.js"
import { ALGORITHM_TAG, rateLimiterHead } from "./internal/keyLayout.js"
import { hashUtf16, partitionPrefixes } from "./internal/keys.js"
import { feature, increment, perMode, rateLimitMetrics } from "./internal/observability.js"
import { optionChecks } from "./internal/options.js"

export {
  /**
   * The error of a call rejected before anything reached the store (see `errors.ts`).
   *
   * @since 0.1.0
   * @category errors
   */
  RateLimitInputInvalid
} from "./errors.js"

/**
 * Options of {@link make}.
 *
 * - `fixed-window`: at most `limit` per window, windows aligned to multiples of `window` on the
 *   Redis server's clock (a burst of up to 2 × `limit` can straddle a boundary).
 * - `sliding-window`: an exact sliding log: no interval of length `window` ever holds more than
 *   `limit`. Memory per subject grows with the decisions allowed in one window.
 * - `token-bucket`: a bucket of `limit` tokens refilled continuously at `limit` per `window`
 *   (GCRA in exact integer arithmetic): bursts up to `limit`, then a steady rate.
 *
 * @example
 * ```ts
 * import type * as RateLimiter from "effect-failclosed/RateLimiter"
 *
 * const options: RateLimiter.RateLimiterOptions = {
 *   name: "api",
 *   limit: 100,
 *   window: "1 minute",
 *   algorithm: "token-bucket",
 *   maxSubjectLength: 256
 * }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface RateLimiterOptions {
  /** names the limiter; part of every key (1 to 128 characters) */
  readonly name: string
  /** the budget per window (token-bucket: the bucket size), a positive integer */
  readonly limit: number
  /** the window (token-bucket: the time to refill an empty bucket), at least 1 millisecond */
  readonly window: Duration.DurationInput
  readonly algorithm: RateLimitAlgorithm
  /** longest subject accepted, in UTF-16 code units (default 1,024) */
  readonly maxSubjectLength?: number | undefined
  /** longest tenant id accepted, in UTF-16 code units (default 256) */
  readonly maxTenantLength?: number | undefined
}

/**
 * Per-call options: `tenant` selects a separate budget; `cost` is how much of the budget this
 * request takes (a positive integer, at most the limit; default 1).
 *
 * @example
 * ```ts
 * import * as RateLimiter from "effect-failclosed/RateLimiter"
 *
 * const Exports = RateLimiter.make({ name: "exports", limit: 1000, window: "1 hour", algorithm: "fixed-window" })
 * // a 250-row export takes 250 of the tenant's hourly 1000 rows
 * const exportRows = (user: string) => Exports.enforce(user, { tenant: "acme", cost: 250 })
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface ConsumeOptions {
  readonly tenant?: string | undefined
  readonly cost?: number | undefined
}

/**
 * One decision (the store's `RateLimitDecision`) and where it was taken. `remaining` is the budget left after it; `retryAfter` is zero when allowed and,
 * when denied, how long until the same request could be allowed. `degraded` is true when the
 * decision was taken node-locally by an `ExplicitDegraded` cache while Redis was unavailable.
 *
 * @example
 * ```ts
 * import { Duration } from "effect"
 * import type * as RateLimiter from "effect-failclosed/RateLimiter"
 *
 * const headers = (r: RateLimiter.RateLimitResult) => ({
 *   "ratelimit-remaining": String(r.remaining),
 *   ...(r.allowed ? {} : { "retry-after": String(Math.ceil(Duration.toSeconds(r.retryAfter))) })
 * })
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface RateLimitResult extends RateLimitDecision {
  readonly backend: Backend
  readonly degraded: boolean
}

/**
 * A rate limiter. It holds no state itself: every decision is the store's, so one limiter value
 * can be shared by a whole application and works unchanged in every mode.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import * as RateLimiter from "effect-failclosed/RateLimiter"
 *
 * const perIp: RateLimiter.RateLimiter = RateLimiter.make({
 *   name: "per-ip",
 *   limit: 20,
 *   window: "1 second",
 *   algorithm: "sliding-window"
 * })
 * const allowed = (ip: string) => Effect.map(perIp.consume(ip), (r) => r.allowed)
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface RateLimiter {
  readonly name: string
  readonly algorithm: RateLimitAlgorithm
  readonly limit: number
  readonly window: Duration.Duration
  /** Takes one decision for `subject`: allowed (the cost is taken from the budget) or not. */
  readonly consume: (
    subject: string,
    options?: ConsumeOptions
  ) => Effect.Effect<RateLimitResult, CacheBackendUnavailable | RateLimitInputInvalid, DistributedCache>
  /** Like `consume`, but a denial fails with `RateLimitExceeded` (carrying `retryAfter`). */
  readonly enforce: (
    subject: string,
    options?: ConsumeOptions
  ) => Effect.Effect<
    RateLimitResult,
    CacheBackendUnavailable | RateLimitExceeded | RateLimitInputInvalid,
    DistributedCache
  >
}

const check = optionChecks("RateLimiter")

/*
 * Store keys: `<keyPrefix>:{rl:<algorithm>:<name>:<tenant>:<subject hash>}`. The `{` right after
 * the prefix is outside the alphabet of keyspace segments, so no keyspace key (and no keyspace
 * `clear`) can ever meet a limiter key; the braces are a Redis Cluster hash tag, so every key a
 * decision touches (the Redis store adds suffixes after the `}`) lands in one slot. The subject
 * is hashed (its UTF-16 code units, so malformed strings stay distinct) and never stored.
 */

/** subject hashes memoised per limiter (cleared when full), for subjects up to this length: subjects recur */
const HASH_MEMO_SIZE = 4096
const HASH_MEMO_SUBJECT_LENGTH = 256

/**
 * Creates a rate limiter. Invalid options are a programmer error: a synchronous `Error`,
 * before anything touches Redis.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { LocalOnly } from "effect-failclosed"
 * import * as RateLimiter from "effect-failclosed/RateLimiter"
 *
 * const Login = RateLimiter.make({ name: "login", limit: 5, window: "1 minute", algorithm: "sliding-window" })
 *
 * const attempt = (user: string) =>
 *   Login.enforce(user, { tenant: "acme" }).pipe(
 *     Effect.as("checking password"),
 *     Effect.catchTag("RateLimitExceeded", (e) => Effect.succeed(`try again in ${e.retryAfter}`))
 *   )
 *
 * const program = attempt("ada").pipe(Effect.provide(LocalOnly))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: RateLimiterOptions): RateLimiter => {
  const name = check.name(options.name)
  const algorithm = options.algorithm
  if (!Object.hasOwn(ALGORITHM_TAG, algorithm)) {
    check.invalid(`algorithm must be "fixed-window", "sliding-window" or "token-bucket"`)
  }
  const limit = check.positiveInteger("limit", options.limit, NaN)
  const windowMillis = check.duration("window", options.window, "window")
  if (algorithm === "token-bucket" && limit * windowMillis > Number.MAX_SAFE_INTEGER) {
    check.invalid("limit × window (in milliseconds) must stay below 2^53 for token-bucket")
  }
  const maxSubjectLength = check.positiveInteger("maxSubjectLength", options.maxSubjectLength, 1024)
  const maxTenantLength = check.positiveInteger("maxTenantLength", options.maxTenantLength, 256)
  /** `<keyPrefix>:{rl:<algorithm>:<name>:<tenant>:` */
  const prefixOf = partitionPrefixes((keyPrefix) => rateLimiterHead(keyPrefix, ALGORITHM_TAG[algorithm], name))
  const window = Duration.millis(windowMillis)

  /** recent subject hashes: hashing costs more than the rest of a decision's own work */
  const hashes = new Map<string, string>()
  const hashOf = (subject: string): string => {
    let h = hashes.get(subject)
    if (h === undefined) {
      h = hashUtf16(subject)
      if (subject.length <= HASH_MEMO_SUBJECT_LENGTH) {
        if (hashes.size >= HASH_MEMO_SIZE) hashes.clear()
        hashes.set(subject, h)
      }
    }
    return h
  }

  const invalid = (reason: string) => Effect.fail(new RateLimitInputInvalid({ limiter: name, reason }))

  const problemOf = (subject: string, tenant: string | undefined, cost: number): string | undefined => {
    if (typeof subject !== "string" || subject.length === 0) return "subject must be a non-empty string"
    if (subject.length > maxSubjectLength) return `subject is longer than ${maxSubjectLength} characters`
    if (tenant !== undefined) {
      if (typeof tenant !== "string" || tenant.length === 0) return "tenant id must be a non-empty string"
      if (tenant.length > maxTenantLength) return `tenant id is longer than ${maxTenantLength} characters`
    }
    if (!Number.isSafeInteger(cost) || cost <= 0) return "cost must be a positive integer"
    if (cost > limit) return `cost is larger than the limit (${limit})`
    return undefined
  }

  const toResult = ({ backend, degraded, value }: Cached<RateLimitDecision>): RateLimitResult => ({
    allowed: value.allowed,
    remaining: value.remaining,
    retryAfter: value.retryAfter,
    backend,
    degraded
  })

  // spans and metrics: tagged with the mode and this limiter's name, never a subject or a tenant
  const observe = feature("limiter", name)
  const metricsOf = rateLimitMetrics(name)
  const allowedOrDenied = (result: RateLimitResult) => (result.allowed ? "ok" : "denied")

  /** counts a decision and makes its result: one function per mode, made on first use */
  const resultOf = (mode: CacheModeName) => {
    const metrics = metricsOf(mode)
    return (decision: Cached<RateLimitDecision>): RateLimitResult => {
      increment(decision.value.allowed ? metrics.allowed : metrics.denied)
      return toResult(decision)
    }
  }
  const resultFor = perMode(resultOf)

  const decide = (
    cache: DistributedCacheService,
    subject: string,
    tenant: string | undefined,
    cost: number
  ): Effect.Effect<RateLimitResult, CacheBackendUnavailable | RateLimitInputInvalid> => {
    const problem = problemOf(subject, tenant, cost)
    if (problem !== undefined) return invalid(problem)
    return Effect.map(
      cache.rateLimit({
        key: prefixOf(cache.keyPrefix, tenant) + hashOf(subject) + "}",
        algorithm,
        limit,
        windowMillis,
        cost
      }),
      resultFor(cache.mode)
    )
  }

  const consume: RateLimiter["consume"] = (subject, options) =>
    observe("rateLimit", (cache) => decide(cache, subject, options?.tenant, options?.cost ?? 1), allowedOrDenied)

  const exceeded = (result: RateLimitResult) =>
    result.allowed
      ? Effect.succeed(result)
      : Effect.fail(new RateLimitExceeded({ limiter: name, retryAfter: result.retryAfter }))

  const enforce: RateLimiter["enforce"] = (subject, options) => Effect.flatMap(consume(subject, options), exceeded)

  return { name, algorithm, limit, window, consume, enforce }
}
