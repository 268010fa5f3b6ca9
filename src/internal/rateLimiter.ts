/**
 * The implementation of `RateLimiter.make`: option and input checks, the store key of a subject (hashed, never stored
 * in clear), one `rateLimit` store operation per decision, metrics per outcome.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type { Cached, DistributedCacheService, CacheModeName, RateLimitDecision } from "../DistributedCache.js"
import { type CacheBackendUnavailable, type InputField, RateLimitExceeded, RateLimitInputInvalid } from "../errors.js"
import type { RateLimiter, RateLimiterOptions, RateLimitResult } from "../RateLimiter.js"
import { ALGORITHM_TAG, rateLimiterHead } from "./keyLayout.js"
import { hashUtf16, partitionPrefixes } from "./keys.js"
import { feature, increment, perMode, rateLimitMetrics } from "./observability.js"
import { optionChecks } from "./options.js"

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

  const invalid = (field: InputField, reason: string) =>
    Effect.fail(new RateLimitInputInvalid({ limiter: name, reason, field }))

  const problemOf = (
    subject: string,
    tenant: string | undefined,
    cost: number
  ): Effect.Effect<never, RateLimitInputInvalid> | undefined => {
    if (typeof subject !== "string" || subject.length === 0)
      return invalid("subject", "subject must be a non-empty string")
    if (subject.length > maxSubjectLength) {
      return invalid("subject", `subject is longer than ${maxSubjectLength} characters`)
    }
    if (tenant !== undefined) {
      if (typeof tenant !== "string" || tenant.length === 0) {
        return invalid("tenant", "tenant id must be a non-empty string")
      }
      if (tenant.length > maxTenantLength) {
        return invalid("tenant", `tenant id is longer than ${maxTenantLength} characters`)
      }
    }
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
