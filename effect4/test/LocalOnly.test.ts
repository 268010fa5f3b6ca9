/**
 * The Effect 4 line on LocalOnly: the features (Keyspace, RateLimiter, ReplayGuard) written once against the
 * DistributedCache service, with no Redis; time-dependent behaviour under TestClock.
 */
import { assert, describe, expectTypeOf, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { TestClock } from "effect/testing"
import {
  CacheBackendUnavailable,
  DistributedCache,
  Keyspace,
  LocalOnly,
  localOnly,
  RateLimiter,
  ReplayGuard,
  type RedisClient,
  StrictDistributed,
  TestCache
} from "effect-failclosed-effect4"

const Profiles = Keyspace.make({
  name: "profiles",
  key: Schema.Struct({ id: Schema.Number }),
  value: Schema.Struct({ name: Schema.String }),
  timeToLive: "1 minute"
})

describe("LocalOnly (Effect 4)", () => {
  it("carries the contract in the types: LocalOnly needs nothing, StrictDistributed a RedisClient", () => {
    expectTypeOf(LocalOnly).toEqualTypeOf<Layer.Layer<DistributedCache>>()
    expectTypeOf(StrictDistributed).toEqualTypeOf<Layer.Layer<DistributedCache, CacheBackendUnavailable, RedisClient>>()
  })

  it.effect("sets and gets a typed value, marked local", () =>
    Effect.gen(function* () {
      yield* Profiles.set({ id: 1 }, { name: "Ada" })
      const cached = yield* Profiles.get({ id: 1 })
      assert.deepStrictEqual(
        Option.map(cached, (c) => [c.value.name, c.backend, c.degraded, c.near, c.stale]),
        Option.some(["Ada", "local", false, false, false])
      )
      assert.isTrue(Option.isNone(yield* Profiles.get({ id: 2 })))
      const stats = yield* DistributedCache.use((cache) => cache.stats)
      assert.deepStrictEqual([stats.mode, stats.hits, stats.misses], ["LocalOnly", 1, 1])
    }).pipe(Effect.provide(localOnly()))
  )

  it.effect("an entry expires with its time to live (TestClock)", () =>
    Effect.gen(function* () {
      yield* Profiles.set({ id: 1 }, { name: "Ada" }, { timeToLive: "10 seconds" })
      yield* TestClock.adjust("9 seconds")
      assert.isTrue(Option.isSome(yield* Profiles.get({ id: 1 })))
      yield* TestClock.adjust("2 seconds")
      assert.isTrue(Option.isNone(yield* Profiles.get({ id: 1 })))
    }).pipe(Effect.provide(localOnly()))
  )

  it.effect("keeps tenants apart, and clear removes one tenant's entries only", () =>
    Effect.gen(function* () {
      yield* Profiles.set({ id: 1 }, { name: "Ada" }, { tenant: "acme" })
      yield* Profiles.set({ id: 1 }, { name: "Eve" }, { tenant: "evil" })
      yield* Profiles.set({ id: 1 }, { name: "None" })
      assert.strictEqual(Option.getOrThrow(yield* Profiles.get({ id: 1 }, { tenant: "acme" })).value.name, "Ada")
      assert.strictEqual(yield* Profiles.clear({ tenant: "evil" }), 1)
      assert.isTrue(Option.isNone(yield* Profiles.get({ id: 1 }, { tenant: "evil" })))
      assert.isTrue(Option.isSome(yield* Profiles.get({ id: 1 }, { tenant: "acme" })))
      assert.isTrue(yield* Profiles.invalidate({ id: 1 }))
      assert.isFalse(yield* Profiles.invalidate({ id: 1 }))
    }).pipe(Effect.provide(localOnly()))
  )

  it.effect("rejects a value JSON cannot carry, and a bad tenant id, before anything is written", () =>
    Effect.gen(function* () {
      const Scores = Keyspace.make({ name: "scores", key: Schema.String, value: Schema.Number, timeToLive: "1 minute" })
      const nan = yield* Effect.flip(Scores.set("a", NaN))
      assert.strictEqual(nan._tag, "CacheValueInvalid")
      const tenant = yield* Effect.flip(Scores.set("a", 1, { tenant: "" }))
      assert.strictEqual(tenant._tag, "CacheValueInvalid")
      assert.include(tenant.message, "tenant id")
      assert.strictEqual((yield* DistributedCache.use((cache) => cache.stats)).localEntries, 0)
    }).pipe(Effect.provide(localOnly()))
  )

  it.effect("getOrCompute runs concurrent misses of one key once, and does not cache a failure", () =>
    Effect.gen(function* () {
      let runs = 0
      const compute = Effect.sync(() => ++runs).pipe(
        Effect.andThen(Effect.sleep("1 second")),
        Effect.as({ name: "computed" })
      )
      const fibers = yield* Effect.forEach([1, 2, 3], () => Effect.forkChild(Profiles.getOrCompute({ id: 7 }, compute)))
      yield* TestClock.adjust("2 seconds")
      const results = yield* Effect.forEach(fibers, Fiber.join)
      assert.strictEqual(runs, 1)
      assert.deepStrictEqual(
        results.map((r) => r.value.name),
        ["computed", "computed", "computed"]
      )
      const failed = yield* Effect.exit(Profiles.getOrCompute({ id: 8 }, Effect.fail("boom" as const)))
      assert.isTrue(Exit.isFailure(failed))
      const second = yield* Profiles.getOrCompute({ id: 8 }, Effect.succeed({ name: "ok" }))
      assert.strictEqual(second.value.name, "ok")
    }).pipe(Effect.provide(localOnly()))
  )

  it.effect("RateLimiter: enforce fails with RateLimitExceeded past the limit, with a retry-after", () =>
    Effect.gen(function* () {
      const Login = RateLimiter.make({ name: "login", limit: 2, window: "1 minute", algorithm: "fixed-window" })
      assert.isTrue((yield* Login.consume("ada")).allowed)
      assert.strictEqual((yield* Login.enforce("ada")).remaining, 0)
      const denied = yield* Effect.flip(Login.enforce("ada"))
      assert.strictEqual(denied._tag, "RateLimitExceeded")
      assert.isTrue((yield* Login.consume("bob")).allowed)
      const invalid = yield* Effect.flip(Login.consume(""))
      assert.strictEqual(invalid._tag, "RateLimitInputInvalid")
    }).pipe(Effect.provide(localOnly()))
  )

  it.effect("ReplayGuard: a nonce is claimed once per window", () =>
    Effect.gen(function* () {
      const Webhooks = ReplayGuard.make({ name: "webhooks", window: "5 minutes" })
      assert.deepStrictEqual(yield* Webhooks.claim("n-1"), { backend: "local", degraded: false })
      const replay = yield* Effect.flip(Webhooks.claim("n-1"))
      assert.strictEqual(replay._tag, "ReplayDetected")
      yield* TestClock.adjust("6 minutes")
      yield* Webhooks.claim("n-1")
    }).pipe(Effect.provide(localOnly()))
  )

  it.effect("TestCache.Unavailable fails every feature with CacheBackendUnavailable", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(Profiles.get({ id: 1 }))
      assert.strictEqual(error._tag, "CacheBackendUnavailable")
      const handled = yield* ReplayGuard.make({ name: "g", window: "1 minute" })
        .claim("x")
        .pipe(Effect.catchTag("CacheBackendUnavailable", (e) => Effect.succeed(e.reason)))
      assert.strictEqual(handled, TestCache.unavailableReason)
    }).pipe(Effect.provide(TestCache.Unavailable))
  )

  it("invalid options are a synchronous Error", () => {
    assert.throws(() => RateLimiter.make({ name: "x", limit: 0, window: "1 minute", algorithm: "fixed-window" }))
    assert.throws(() => localOnly({ keyPrefix: "a:b" }), /keyPrefix/)
  })
})

describe("getOrCompute's stampede options (Effect 4, LocalOnly)", () => {
  it.effect("staleWhileRevalidate serves the stale value marked stale and refreshes once in the background", () =>
    Effect.gen(function* () {
      let runs = 0
      const compute = Effect.sync(() => ({ name: `v${++runs}` }))
      const options = { timeToLive: "10 seconds", staleWhileRevalidate: "1 minute" } as const
      assert.strictEqual((yield* Profiles.getOrCompute({ id: 1 }, compute, options)).value.name, "v1")
      yield* TestClock.adjust("11 seconds")
      const stale = yield* Profiles.getOrCompute({ id: 1 }, compute, options)
      assert.deepStrictEqual([stale.value.name, stale.stale], ["v1", true])
      yield* TestClock.adjust("1 millis")
      yield* Effect.yieldNow
      const fresh = yield* Profiles.getOrCompute({ id: 1 }, compute, options)
      assert.deepStrictEqual([fresh.value.name, fresh.stale, runs], ["v2", false, 2])
      // a plain get never serves the sealed entry past its freshness
      yield* TestClock.adjust("11 seconds")
      assert.isTrue(Option.isNone(yield* Profiles.get({ id: 1 })))
    }).pipe(Effect.provide(localOnly()))
  )

  it.effect("staleIfError serves the stale value when compute fails, and not past the window", () =>
    Effect.gen(function* () {
      const options = { timeToLive: "10 seconds", staleIfError: "30 seconds" } as const
      yield* Profiles.getOrCompute({ id: 2 }, Effect.succeed({ name: "old" }), options)
      yield* TestClock.adjust("15 seconds")
      const served = yield* Profiles.getOrCompute({ id: 2 }, Effect.fail("down" as const), options)
      assert.deepStrictEqual([served.value.name, served.stale], ["old", true])
      yield* TestClock.adjust("30 seconds")
      const failed = yield* Effect.flip(Profiles.getOrCompute({ id: 2 }, Effect.fail("down" as const), options))
      assert.strictEqual(failed, "down")
    }).pipe(Effect.provide(localOnly()))
  )

  it.effect("lock: a held lock makes a caller wait for the holder's value", () =>
    Effect.gen(function* () {
      let runs = 0
      const slow = Effect.sync(() => ++runs).pipe(
        Effect.andThen(Effect.sleep("2 seconds")),
        Effect.as({ name: "locked" })
      )
      const fiber = yield* Effect.forkChild(Profiles.getOrCompute({ id: 3 }, slow, { lock: true }))
      yield* TestClock.adjust("3 seconds")
      const result = yield* Fiber.join(fiber)
      assert.deepStrictEqual([result.value.name, runs], ["locked", 1])
      const invalid = yield* Effect.flip(
        Profiles.getOrCompute({ id: 4 }, slow, { lock: true, lockTimeout: "0 millis" })
      )
      assert.strictEqual(invalid._tag === "CacheValueInvalid" ? invalid.field : undefined, "options")
    }).pipe(Effect.provide(localOnly()))
  )
})
