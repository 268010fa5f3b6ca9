/**
 * Rate limits kept in Redis: one atomic script per decision (the core's scripts, the core's key layout), so an
 * Effect 3 node and an Effect 4 node that use one limiter name share one budget. The same names and options as
 * `effect-failclosed/RateLimiter`.
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { ALGORITHM_TAG, FeatureKeys, HASH_TAG_END, rateLimiterHead, tenantProblem } from "@effect-failclosed/core"
import { type Backend, DistributedCache, type RateLimitAlgorithm, type RateLimitDecision } from "./DistributedCache.js"
import { type CacheBackendUnavailable, type InputField, RateLimitExceeded, RateLimitInputInvalid } from "./errors.js"
import { optionChecks } from "./internal/options.js"

export {
  /**
   * @since 0.1.0
   */
  RateLimitInputInvalid
} from "./errors.js"

/**
 * The options of {@link make}.
 *
 * @example
 * ```ts
 * import type { RateLimiter } from "effect-failclosed-effect4"
 *
 * const options: RateLimiter.RateLimiterOptions = { name: "login", limit: 5, window: "1 minute", algorithm: "fixed-window" }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface RateLimiterOptions {
  readonly name: string
  readonly limit: number
  readonly window: Duration.Input
  readonly algorithm: RateLimitAlgorithm
  /** the longest subject (default 1024 characters) */
  readonly maxSubjectLength?: number | undefined
  /** the longest tenant id (default 256) */
  readonly maxTenantLength?: number | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ConsumeOptions {
  readonly tenant?: string | undefined
  /** how much of the budget this request uses (default 1) */
  readonly cost?: number | undefined
}

/**
 * A decision and where it was made (`degraded`: by ExplicitDegraded's node-local fallback).
 *
 * @since 0.1.0
 * @category models
 */
export interface RateLimitResult extends RateLimitDecision {
  readonly backend: Backend
  readonly degraded: boolean
}

/**
 * A rate limiter: `consume` decides, `enforce` fails with `RateLimitExceeded` when denied.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { LocalOnly, RateLimiter } from "effect-failclosed-effect4"
 *
 * const Login = RateLimiter.make({ name: "login", limit: 5, window: "1 minute", algorithm: "sliding-window" })
 * const attempt = Login.enforce("ada@example.com").pipe(Effect.provide(LocalOnly))
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
  readonly consume: (
    subject: string,
    options?: ConsumeOptions
  ) => Effect.Effect<RateLimitResult, CacheBackendUnavailable | RateLimitInputInvalid, DistributedCache>
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

/**
 * Makes a rate limiter. Invalid options are a programmer error: a synchronous `Error`.
 *
 * @example
 * ```ts
 * import { RateLimiter } from "effect-failclosed-effect4"
 *
 * const Api = RateLimiter.make({ name: "api", limit: 100, window: "1 second", algorithm: "token-bucket" })
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
  const keys = new FeatureKeys(
    (keyPrefix) => rateLimiterHead(keyPrefix, ALGORITHM_TAG[algorithm], name),
    "string",
    HASH_TAG_END
  )
  const window = Duration.millis(windowMillis)

  const invalid = (reason: string, field: InputField) => new RateLimitInputInvalid({ limiter: name, reason, field })
  const problemOf = (subject: string, tenant: string | undefined, cost: number): RateLimitInputInvalid | undefined => {
    if (typeof subject !== "string" || subject.length === 0)
      return invalid("subject must be a non-empty string", "subject")
    if (subject.length > maxSubjectLength) {
      return invalid(`subject is longer than ${maxSubjectLength} characters`, "subject")
    }
    const tenantIssue = tenantProblem(tenant, maxTenantLength)
    if (tenantIssue !== undefined) return invalid(tenantIssue, "tenant")
    if (!Number.isSafeInteger(cost) || cost <= 0) return invalid("cost must be a positive integer", "cost")
    if (cost > limit) return invalid(`cost is larger than the limit (${limit})`, "cost")
    return undefined
  }

  const consume: RateLimiter["consume"] = (subject, options) =>
    DistributedCache.use((cache): Effect.Effect<RateLimitResult, CacheBackendUnavailable | RateLimitInputInvalid> => {
      const tenant = options?.tenant
      const cost = options?.cost ?? 1
      const problem = problemOf(subject, tenant, cost)
      if (problem !== undefined) return Effect.fail(problem)
      return Effect.map(
        cache.rateLimit({ key: keys.key(cache.keyPrefix, tenant, subject), algorithm, limit, windowMillis, cost }),
        ({ backend, degraded, value }): RateLimitResult => ({
          allowed: value.allowed,
          remaining: value.remaining,
          retryAfter: value.retryAfter,
          backend,
          degraded
        })
      )
    })

  const exceeded = (result: RateLimitResult) =>
    result.allowed
      ? Effect.succeed(result)
      : Effect.fail(new RateLimitExceeded({ limiter: name, retryAfter: result.retryAfter }))

  const enforce: RateLimiter["enforce"] = (subject, options) => Effect.flatMap(consume(subject, options), exceeded)

  return { name, algorithm, limit, window, consume, enforce }
}
