/**
 * Caches for tests. `LocalOnly` never fails, so it cannot exercise what an application does when
 * Redis is down; `TestCache.Unavailable` is a `DistributedCache` in which Redis is down: every
 * operation fails with `CacheBackendUnavailable`, the way a `StrictDistributed` cache fails
 * during an outage, without a Redis to kill.
 *
 * Every operation means every one: reads and writes of a `Keyspace`, `invalidate`, `clear`,
 * counting, `ReplayGuard.claim` and `RateLimiter.consume`. A hand-written stand-in that fails
 * only `get` and `set` lets a rate limiter and a replay guard keep deciding from memory, so a
 * test "proves" that a login limiter answers 200 during an outage: exactly the silent fallback
 * this library exists to prevent.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { DistributedCache, type DistributedCacheService } from "./DistributedCache.js"
import { CacheBackendUnavailable } from "./errors.js"

/**
 * The `reason` of every `CacheBackendUnavailable` that {@link Unavailable} fails with, so a test
 * can tell its simulated outage from a real one.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Keyspace, TestCache } from "effect-failclosed"
 *
 * const Flags = Keyspace.make({ name: "flags", key: Schema.String, value: Schema.Boolean, timeToLive: "1 minute" })
 *
 * const reason = Flags.get("beta").pipe(
 *   Effect.flip,
 *   Effect.map((error) => error._tag === "CacheBackendUnavailable" && error.reason === TestCache.unavailableReason),
 *   Effect.provide(TestCache.Unavailable)
 * )
 * ```
 *
 * @since 0.1.0
 * @category constants
 */
export const unavailableReason = "simulated outage (TestCache.Unavailable)"

/**
 * Builds the service of {@link Unavailable}: a `DistributedCache` composed like
 * `StrictDistributed` whose Redis never answers. Its `stats` work (mode `StrictDistributed`,
 * backend `redis`, `failures` counting the failed operations); nothing is ever stored.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { DistributedCache, TestCache } from "effect-failclosed"
 *
 * // the same as TestCache.Unavailable
 * const Down = Layer.effect(DistributedCache, TestCache.makeUnavailable)
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
    // what the health check of StrictDistributed answers while Redis is down
    health: Effect.succeed({
      mode: "StrictDistributed",
      backend: "redis",
      reachable: false,
      breakers: [{ domain: "all", open: true }],
      nearCaches: []
    }),
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
 * A `DistributedCache` whose Redis is down, for tests: every operation (`Keyspace` reads,
 * writes, invalidations and clears, `count`, `ReplayGuard.claim`, `RateLimiter.consume` and
 * `enforce`) fails with `CacheBackendUnavailable`, as `StrictDistributed` does during an outage.
 * Provide it where the application's cache Layer would go to test the outage branch of your code:
 * an HTTP service should answer 503, never 200 from memory. It needs no Redis and no
 * `RedisClient`; each use of the Layer builds a fresh service.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { TestCache } from "effect-failclosed"
 * import * as RateLimiter from "effect-failclosed/RateLimiter"
 *
 * const Login = RateLimiter.make({ name: "login", limit: 5, window: "15 minutes", algorithm: "sliding-window" })
 *
 * // "unavailable", never "allowed"
 * const outcome = Login.consume("user:ada").pipe(
 *   Effect.map((result) => (result.allowed ? "allowed" : "denied")),
 *   Effect.catchTag("CacheBackendUnavailable", () => Effect.succeed("unavailable")),
 *   Effect.provide(TestCache.Unavailable)
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const Unavailable: Layer.Layer<DistributedCache> = Layer.effect(DistributedCache, makeUnavailable)
