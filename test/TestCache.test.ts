import { KeyValueStore as PlatformKeyValueStore } from "@effect/platform"
import { describe, expect, expectTypeOf, it } from "@effect/vitest"
import { Effect, Layer, Schema } from "effect"
import {
  type CacheBackendUnavailable,
  DistributedCache,
  type DistributedCacheService,
  Keyspace,
  KeyValueStore,
  RateLimiter,
  ReplayGuard,
  TestCache
} from "effect-failclosed"

const Items = Keyspace.make({ name: "tc-items", key: Schema.String, value: Schema.Number, timeToLive: "1 minute" })
const Login = RateLimiter.make({ name: "tc-login", limit: 5, window: "1 minute", algorithm: "sliding-window" })
const Hooks = ReplayGuard.make({ name: "tc-hooks", window: "1 minute" })

/** `self` fails (a success fails the test), with a CacheBackendUnavailable of the simulated outage */
const expectUnavailable = <A, E, R>(self: Effect.Effect<A, E, R>, operation: string) =>
  Effect.gen(function* () {
    const error = yield* Effect.flip(self)
    expect(error).toMatchObject({
      _tag: "CacheBackendUnavailable",
      mode: "StrictDistributed",
      operation,
      reason: TestCache.unavailableReason
    })
  })

describe("TestCache.Unavailable", () => {
  it.effect("fails every operation of the service with CacheBackendUnavailable; stats still answer", () =>
    Effect.gen(function* () {
      const cache = yield* DistributedCache
      const calls: Record<
        // nearCache is not an operation: a service without near caches (this one) leaves it out
        Exclude<keyof DistributedCacheService, "mode" | "keyPrefix" | "stats" | "nearCache" | "health">,
        Effect.Effect<unknown, unknown>
      > = {
        get: cache.get("k"),
        set: cache.set("k", "v", 1000),
        getMany: cache.getMany(["k", "l"]),
        setMany: cache.setMany([["k", "v", 1000]]),
        invalidate: cache.invalidate("k"),
        clear: cache.clear("fc:"),
        count: cache.count("fc:"),
        claim: cache.claim("k", 1000),
        rateLimit: cache.rateLimit({ key: "k", algorithm: "fixed-window", limit: 1, windowMillis: 1000, cost: 1 }),
        acquireLock: cache.acquireLock("k", "token", 1000),
        releaseLock: cache.releaseLock("k", "token")
      }
      // every function of the service but stats is an operation, and each one fails
      const operations = Object.keys(cache).filter(
        (name) => typeof cache[name as keyof DistributedCacheService] === "function"
      )
      expect(operations.sort()).toEqual(Object.keys(calls).sort())
      for (const [operation, call] of Object.entries(calls)) yield* expectUnavailable(call, operation)
      const stats = yield* cache.stats
      expect(stats).toMatchObject({ mode: "StrictDistributed", backend: "redis", degraded: false, hits: 0, misses: 0 })
      expect(stats.failures).toBe(Object.keys(calls).length)
      // the health check answers as StrictDistributed's does during an outage
      expect(yield* cache.health).toMatchObject({ mode: "StrictDistributed", reachable: false })
    }).pipe(Effect.provide(TestCache.Unavailable))
  )

  it.effect("a rate limiter and a replay guard fail closed under it: never allowed, never claimed", () =>
    Effect.gen(function* () {
      yield* expectUnavailable(Login.consume("user:ada"), "rateLimit")
      yield* expectUnavailable(Login.enforce("user:ada", { tenant: "acme" }), "rateLimit")
      yield* expectUnavailable(Hooks.claim("evt_1"), "claim")
      yield* expectUnavailable(Hooks.claim("evt_1", { tenant: "acme" }), "claim")
    }).pipe(Effect.provide(TestCache.Unavailable))
  )

  it.effect("a keyspace fails closed under it: reads, writes, invalidations, clears and getOrCompute", () =>
    Effect.gen(function* () {
      let computed = 0
      yield* expectUnavailable(Items.get("a"), "get")
      yield* expectUnavailable(Items.set("a", 1, { tenant: "acme" }), "set")
      yield* expectUnavailable(Items.invalidate("a"), "invalidate")
      yield* expectUnavailable(Items.clear({ tenant: "acme" }), "clear")
      const failed = yield* Effect.flip(
        Items.getOrCompute(
          "a",
          Effect.sync(() => ++computed)
        )
      )
      expect(failed._tag).toBe("CacheBackendUnavailable")
    }).pipe(Effect.provide(TestCache.Unavailable))
  )

  it.effect("the KeyValueStore fails closed under it", () =>
    Effect.gen(function* () {
      const store = yield* PlatformKeyValueStore.KeyValueStore
      expect((yield* Effect.flip(store.get("a")))._tag).toBe("SystemError")
      expect((yield* Effect.flip(store.set("a", "1")))._tag).toBe("SystemError")
    }).pipe(
      Effect.provide(
        KeyValueStore.layer({ name: "tc-kv", timeToLive: "1 minute" }).pipe(Layer.provide(TestCache.Unavailable))
      )
    )
  )

  it.effect("bad input is still rejected as such, before the outage: the caller's mistake is not hidden", () =>
    Effect.gen(function* () {
      expect((yield* Effect.flip(Login.consume("")))._tag).toBe("RateLimitInputInvalid")
      expect((yield* Effect.flip(Hooks.claim("")))._tag).toBe("CacheValueInvalid")
      expect((yield* Effect.flip(Items.set("a", Number.NaN)))._tag).toBe("CacheValueInvalid")
    }).pipe(Effect.provide(TestCache.Unavailable))
  )

  it("types: needs nothing, cannot fail to build, and the outage is in the error channel", () => {
    expectTypeOf(TestCache.Unavailable).toEqualTypeOf<Layer.Layer<DistributedCache>>()
    const consumed = Login.consume("s").pipe(Effect.provide(TestCache.Unavailable))
    expectTypeOf<Effect.Effect.Error<typeof consumed>>().toMatchTypeOf<
      CacheBackendUnavailable | RateLimiter.RateLimitInputInvalid
    >()
    expectTypeOf<Effect.Effect.Context<typeof consumed>>().toEqualTypeOf<never>()
  })
})
