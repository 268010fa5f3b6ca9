/**
 * Replay protection kept in Redis: a nonce is claimed atomically for a window (the core's key layout), so a nonce
 * claimed by an Effect 3 node is a replay on an Effect 4 node and the other way round. The same names and options
 * as `effect-failclosed/ReplayGuard`.
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { FeatureKeys, HASH_TAG_END, replayGuardHead, tenantProblem } from "@effect-failclosed/core"
import { type Backend, DistributedCache } from "./DistributedCache.js"
import { type CacheBackendUnavailable, CacheValueInvalid, ReplayDetected } from "./errors.js"
import { optionChecks } from "./internal/options.js"

/**
 * The options of {@link make}.
 *
 * @example
 * ```ts
 * import type { ReplayGuard } from "effect-failclosed-effect4"
 *
 * const options: ReplayGuard.ReplayGuardOptions = { name: "webhooks", window: "5 minutes" }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface ReplayGuardOptions {
  readonly name: string
  readonly window: Duration.Input
  /** the longest nonce (default 1024 characters) */
  readonly maxNonceLength?: number | undefined
  /** the longest tenant id (default 256) */
  readonly maxTenantLength?: number | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ClaimOptions {
  readonly tenant?: string | undefined
}

/**
 * Where a claim was recorded (`degraded`: by ExplicitDegraded's node-local fallback).
 *
 * @since 0.1.0
 * @category models
 */
export interface Claimed {
  readonly backend: Backend
  readonly degraded: boolean
}

/**
 * A replay guard: `claim` succeeds once per nonce within the window, on any node.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { LocalOnly, ReplayGuard } from "effect-failclosed-effect4"
 *
 * const Webhooks = ReplayGuard.make({ name: "webhooks", window: "5 minutes" })
 * const first = Webhooks.claim("nonce-1").pipe(Effect.provide(LocalOnly))
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface ReplayGuard {
  readonly name: string
  readonly window: Duration.Duration
  readonly claim: (
    nonce: string,
    options?: ClaimOptions
  ) => Effect.Effect<Claimed, CacheBackendUnavailable | CacheValueInvalid | ReplayDetected, DistributedCache>
}

const check = optionChecks("ReplayGuard")

/**
 * Makes a replay guard. Invalid options are a programmer error: a synchronous `Error`.
 *
 * @example
 * ```ts
 * import { ReplayGuard } from "effect-failclosed-effect4"
 *
 * const Payments = ReplayGuard.make({ name: "payments", window: "10 minutes" })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: ReplayGuardOptions): ReplayGuard => {
  const name = check.name(options.name)
  const windowMillis = check.duration("window", options.window, "window")
  const maxNonceLength = check.positiveInteger("maxNonceLength", options.maxNonceLength, 1024)
  const maxTenantLength = check.positiveInteger("maxTenantLength", options.maxTenantLength, 256)
  const window = Duration.millis(windowMillis)
  const keys = new FeatureKeys((keyPrefix) => replayGuardHead(keyPrefix, name), "string", HASH_TAG_END)

  const invalid = (reason: string, field: "nonce" | "tenant") => new CacheValueInvalid({ guard: name, reason, field })
  const problemOf = (nonce: string, tenant: string | undefined): CacheValueInvalid | undefined => {
    if (typeof nonce !== "string" || nonce.length === 0) return invalid("nonce must be a non-empty string", "nonce")
    if (nonce.length > maxNonceLength) return invalid(`nonce is longer than ${maxNonceLength} characters`, "nonce")
    const tenantIssue = tenantProblem(tenant, maxTenantLength)
    return tenantIssue === undefined ? undefined : invalid(tenantIssue, "tenant")
  }

  const claim: ReplayGuard["claim"] = (nonce, options) =>
    DistributedCache.use(
      (cache): Effect.Effect<Claimed, CacheBackendUnavailable | CacheValueInvalid | ReplayDetected> => {
        const tenant = options?.tenant
        const problem = problemOf(nonce, tenant)
        if (problem !== undefined) return Effect.fail(problem)
        return Effect.flatMap(
          cache.claim(keys.key(cache.keyPrefix, tenant, nonce), windowMillis),
          (claimed): Effect.Effect<Claimed, ReplayDetected> =>
            claimed.value
              ? Effect.succeed({ backend: claimed.backend, degraded: claimed.degraded })
              : Effect.fail(new ReplayDetected({ guard: name, degraded: claimed.degraded }))
        )
      }
    )

  return { name, window, claim }
}
