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
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type { Backend, DistributedCache, RateLimitAlgorithm, RateLimitDecision } from "./DistributedCache.js"
import type { CacheBackendUnavailable, RateLimitExceeded, RateLimitInputInvalid } from "./errors.js"
import * as internal from "./internal/rateLimiter.js"

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
export const make: (options: RateLimiterOptions) => RateLimiter = internal.make
