/**
 * Test helpers: a `DistributedCache` whose every operation fails with `CacheBackendUnavailable`, to test the code
 * paths that handle an outage without stopping a Redis. The same names as `effect-failclosed/TestCache`.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { DistributedCache, type DistributedCacheService } from "./DistributedCache.js"
import { CacheBackendUnavailable } from "./errors.js"

/**
 * The `reason` of every failure of {@link Unavailable}.
 *
 * @example
 * ```ts
 * import { TestCache } from "effect-failclosed-effect4"
 *
 * const isSimulated = (reason: string) => reason === TestCache.unavailableReason
 * ```
 *
 * @since 0.1.0
 * @category constants
 */
export const unavailableReason = "simulated outage (TestCache.Unavailable)"

/**
 * A cache service that fails every operation as a StrictDistributed cache does while Redis is down.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { DistributedCache, TestCache } from "effect-failclosed-effect4"
 *
 * const layer = Layer.effect(DistributedCache, TestCache.makeUnavailable)
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeUnavailable: Effect.Effect<DistributedCacheService> = Effect.sync(() => {
  let failures = 0
  const fail = (operation: string) =>
    Effect.suspend(() => {
      failures++
      return Effect.fail(
        new CacheBackendUnavailable({ mode: "StrictDistributed", operation, reason: unavailableReason })
      )
    })
  return DistributedCache.of({
    mode: "StrictDistributed",
    keyPrefix: "fc",
    stats: Effect.sync(() => ({
      mode: "StrictDistributed",
      backend: "redis",
      degraded: false,
      hits: 0,
      misses: 0,
      hitRate: 0,
      failures,
      localEntries: 0
    })),
    get: () => fail("get"),
    set: () => fail("set"),
    getMany: () => fail("getMany"),
    setMany: () => fail("setMany"),
    invalidate: () => fail("invalidate"),
    clear: () => fail("clear"),
    count: () => fail("count"),
    claim: () => fail("claim"),
    rateLimit: () => fail("rateLimit"),
    acquireLock: () => fail("acquireLock"),
    releaseLock: () => fail("releaseLock")
  })
})

/**
 * {@link makeUnavailable} as a Layer.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { RateLimiter, TestCache } from "effect-failclosed-effect4"
 *
 * const Login = RateLimiter.make({ name: "login", limit: 5, window: "1 minute", algorithm: "fixed-window" })
 * const outage = Login.consume("ada").pipe(Effect.provide(TestCache.Unavailable))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const Unavailable: Layer.Layer<DistributedCache> = Layer.effect(DistributedCache, makeUnavailable)
