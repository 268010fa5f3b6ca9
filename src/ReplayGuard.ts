/**
 * Replay protection kept in the cache's store: a nonce (a webhook id, a request id, a one-time
 * token) can be claimed once within a window, on any node. A claim is one atomic
 * `SET key 1 NX PX window` in Redis, never a read followed by a write, so two nodes claiming the
 * same nonce at the same moment cannot both succeed.
 *
 * What happens when Redis is unavailable is the mode's: `StrictDistributed` fails the claim
 * with `CacheBackendUnavailable` (nothing is accepted without Redis), `ExplicitDegraded` claims
 * node-locally and marks the result `degraded: true`, `LocalOnly` claims in memory. A claim
 * whose command timed out fails too, even though Redis may have stored it: a retry of the same
 * nonce is then reported as a replay, which keeps the guard closed.
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type { Backend, Cached, CacheModeName, DistributedCache, DistributedCacheService } from "./DistributedCache.js"
import { type CacheBackendUnavailable, CacheValueInvalid, type InputField, ReplayDetected } from "./errors.js"
import { FeatureKeys, HASH_TAG_END, replayGuardHead, tenantProblem } from "@effect-failclosed/core"
import { feature, increment, perMode, replayMetrics } from "./internal/observability.js"
import { optionChecks } from "./internal/options.js"

/**
 * Options of {@link make}.
 *
 * @example
 * ```ts
 * import type { ReplayGuard } from "effect-failclosed"
 *
 * const options: ReplayGuard.ReplayGuardOptions = { name: "one-time-tokens", window: "15 minutes", maxNonceLength: 64 }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface ReplayGuardOptions {
  /** names the guard; part of every key (1 to 128 characters) */
  readonly name: string
  /** how long a claimed nonce is remembered, at least 1 millisecond */
  readonly window: Duration.DurationInput
  /** longest nonce accepted, in UTF-16 code units (default 1,024) */
  readonly maxNonceLength?: number | undefined
  /** longest tenant id accepted, in UTF-16 code units (default 256) */
  readonly maxTenantLength?: number | undefined
}

/**
 * Per-call options: `tenant` selects a separate nonce space.
 *
 * @example
 * ```ts
 * import { ReplayGuard } from "effect-failclosed"
 *
 * const Hooks = ReplayGuard.make({ name: "hooks", window: "10 minutes" })
 * // two senders may use the same delivery ids without refusing each other's deliveries
 * const receive = (sender: string, id: string) => Hooks.claim(id, { tenant: sender })
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface ClaimOptions {
  readonly tenant?: string | undefined
}

/**
 * A successful claim: where it was recorded. `degraded` is true when an `ExplicitDegraded`
 * cache recorded it node-locally while Redis was unavailable (other nodes cannot see it).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { ReplayGuard } from "effect-failclosed"
 *
 * const Hooks = ReplayGuard.make({ name: "hooks", window: "10 minutes" })
 * const receive = (id: string) =>
 *   Effect.tap(Hooks.claim(id), (claimed) =>
 *     claimed.degraded ? Effect.logWarning("replay protection is node-local right now") : Effect.void
 *   )
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface Claimed {
  readonly backend: Backend
  readonly degraded: boolean
}

/**
 * A replay guard. It holds no state itself: every claim is the store's, so one guard value can
 * be shared by a whole application and works unchanged in every mode.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { ReplayGuard } from "effect-failclosed"
 *
 * const Tokens: ReplayGuard.ReplayGuard = ReplayGuard.make({ name: "one-time-tokens", window: "15 minutes" })
 * const redeem = (token: string) => Effect.as(Tokens.claim(token), "redeemed")
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface ReplayGuard {
  readonly name: string
  readonly window: Duration.Duration
  /**
   * Claims `nonce` for the window. Fails with `ReplayDetected` when it was already claimed within
   * the window, and with `CacheValueInvalid` (nothing written, the store not contacted) for an
   * empty or oversized nonce or tenant id.
   */
  readonly claim: (
    nonce: string,
    options?: ClaimOptions
  ) => Effect.Effect<Claimed, CacheBackendUnavailable | CacheValueInvalid | ReplayDetected, DistributedCache>
}

const check = optionChecks("ReplayGuard")

/**
 * Creates a replay guard. Invalid options are a programmer error: a synchronous `Error`, before
 * anything touches Redis. Store keys are `<keyPrefix>:{g:<name>:<tenant>:<nonce hash>}` (see
 * `KeyLayout`): the nonce is hashed, never stored.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { LocalOnly, ReplayGuard } from "effect-failclosed"
 *
 * const Webhooks = ReplayGuard.make({ name: "webhooks", window: "10 minutes" })
 *
 * const receive = (deliveryId: string) =>
 *   Webhooks.claim(deliveryId).pipe(
 *     Effect.as(200),
 *     Effect.catchTag("ReplayDetected", () => Effect.succeed(409))
 *   )
 *
 * const program = Effect.zip(receive("evt_1"), receive("evt_1")).pipe(Effect.provide(LocalOnly)) // [200, 409]
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

  /**
   * `<keyPrefix>:{g:<name>:<tenant>:<nonce hash>}` (the hash of the nonce's JSON, so malformed strings stay distinct);
   * nonces do not recur, so their hashes are not memoised
   */
  const keys = new FeatureKeys((keyPrefix) => replayGuardHead(keyPrefix, name), "string", HASH_TAG_END, false)

  const invalid = (field: InputField, reason: string) =>
    Effect.fail(new CacheValueInvalid({ guard: name, reason, field }))
  const problemOf = (
    nonce: string,
    tenant: string | undefined
  ): Effect.Effect<never, CacheValueInvalid> | undefined => {
    if (typeof nonce !== "string" || nonce.length === 0) return invalid("nonce", "nonce must be a non-empty string")
    if (nonce.length > maxNonceLength) return invalid("nonce", `nonce is longer than ${maxNonceLength} characters`)
    const badTenant = tenantProblem(tenant, maxTenantLength)
    return badTenant === undefined ? undefined : invalid("tenant", badTenant)
  }

  // spans and metrics: tagged with the mode and this guard's name, never a nonce or a tenant
  const observe = feature("guard", name)
  const replaysOf = replayMetrics(name)

  /** a claim's result: one function per mode, made on first use */
  const toClaimedOf = (mode: CacheModeName) => {
    const replays = replaysOf(mode)
    return (claimed: Cached<boolean>): Effect.Effect<Claimed, ReplayDetected> => {
      if (claimed.value) return Effect.succeed({ backend: claimed.backend, degraded: claimed.degraded })
      increment(replays)
      return Effect.fail(new ReplayDetected({ guard: name, degraded: claimed.degraded }))
    }
  }
  const toClaimed = perMode(toClaimedOf)

  const claimIn = (
    cache: DistributedCacheService,
    nonce: string,
    tenant: string | undefined
  ): Effect.Effect<Claimed, CacheBackendUnavailable | CacheValueInvalid | ReplayDetected> => {
    const problem = problemOf(nonce, tenant)
    if (problem !== undefined) return problem
    return Effect.flatMap(cache.claim(keys.key(cache.keyPrefix, tenant, nonce), windowMillis), toClaimed(cache.mode))
  }

  const claim: ReplayGuard["claim"] = (nonce, options) =>
    observe("claim", (cache) => claimIn(cache, nonce, options?.tenant))

  return { name, window, claim }
}
