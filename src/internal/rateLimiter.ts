/**
 * The implementation of `RateLimiter.make`: option and input checks, the store key of a subject (hashed, never stored
 * in clear), one `rateLimit` store operation per decision, metrics per outcome.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type { Cached, DistributedCacheService, CacheModeName, RateLimitDecision } from "../DistributedCache.js"
import { type CacheBackendUnavailable, type InputField, RateLimitExceeded, RateLimitInputInvalid } from "../errors.js"
import type { RateLimiter, RateLimiterOptions, RateLimitResult } from "../RateLimiter.js"
import { ALGORITHM_TAG, FeatureKeys, HASH_TAG_END, rateLimiterHead, tenantProblem } from "@effect-failclosed/core"
import { feature, increment, perMode, rateLimitMetrics } from "./observability.js"
import { optionChecks } from "./options.js"

const check = optionChecks("RateLimiter")

/*
 * Store keys: `<keyPrefix>:{r<algorithm>:<name>:<tenant>:<subject hash>}` (the core's key layout). The braces are a
 * Redis Cluster hash tag, so every key a decision touches (the Redis store adds suffixes after the `}`) lands in one
 * slot. The subject is hashed (the hash of its JSON, so malformed strings stay distinct) and never stored.
 */

/** @internal */
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
  /** `<keyPrefix>:{r<algorithm>:<name>:<tenant>:<subject hash>}`, memoised: subjects recur */
  const keys = new FeatureKeys(
    (keyPrefix) => rateLimiterHead(keyPrefix, ALGORITHM_TAG[algorithm], name),
    "string",
    HASH_TAG_END
  )
  const window = Duration.millis(windowMillis)

  const invalid = (field: InputField, reason: string) =>
    Effect.fail(new RateLimitInputInvalid({ limiter: name, reason, field }))

  const problemOf = (
    subject: string,
    tenant: string | undefined,
    cost: number
  ): Effect.Effect<never, RateLimitInputInvalid> | undefined => {
    if (typeof subject !== "string" || subject.length === 0) {
      return invalid("subject", "subject must be a non-empty string")
    }
    if (subject.length > maxSubjectLength) {
      return invalid("subject", `subject is longer than ${maxSubjectLength} characters`)
    }
    const badTenant = tenantProblem(tenant, maxTenantLength)
    if (badTenant !== undefined) return invalid("tenant", badTenant)
    if (!Number.isSafeInteger(cost) || cost <= 0) return invalid("cost", "cost must be a positive integer")
    if (cost > limit) return invalid("cost", `cost is larger than the limit (${limit})`)
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
    if (problem !== undefined) return problem
    return Effect.map(
      cache.rateLimit({
        key: keys.key(cache.keyPrefix, tenant, subject),
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
