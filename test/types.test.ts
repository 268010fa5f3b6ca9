/**
 * Type-level guarantees. `expectTypeOf` and `@ts-expect-error` are checked by the typecheck step (`tsc -p
 * tsconfig.json`, part of `npm test`): a regression fails it. The runtime assertions check the same composition
 * actually runs.
 */
import { describe, expect, expectTypeOf, it } from "@effect/vitest"
import { type ConfigError, type Duration, Effect, Layer, Option, Schema } from "effect"
import {
  type CacheBackendUnavailable,
  type Cached,
  type CacheEntryInvalid,
  type CacheStats,
  type CacheValueInvalid,
  DistributedCache,
  ExplicitDegraded,
  explicitDegraded,
  Keyspace,
  LocalOnly,
  localOnly,
  RedisClient,
  StrictDistributed,
  strictDistributed
} from "effect-failclosed"

const Users = Keyspace.make({
  name: "users",
  key: Schema.Struct({ id: Schema.Number }),
  value: Schema.Struct({ name: Schema.String }),
  timeToLive: "1 minute"
})
type User = { readonly name: string }

const program = Effect.gen(function* () {
  yield* Users.set({ id: 1 }, { name: "Ada" })
  return yield* Users.get({ id: 1 })
})

describe("mode Layer types", () => {
  it("LocalOnly needs nothing and cannot fail", () => {
    expectTypeOf(LocalOnly).toEqualTypeOf<Layer.Layer<DistributedCache>>()
    expectTypeOf(localOnly({ capacity: 10 })).toEqualTypeOf<Layer.Layer<DistributedCache>>()
    expectTypeOf<Layer.Layer.Context<typeof LocalOnly>>().toBeNever()
    expectTypeOf<Layer.Layer.Error<typeof LocalOnly>>().toBeNever()
    // a program provided with LocalOnly requires nothing else: no RedisClient
    const provided = program.pipe(Effect.provide(LocalOnly))
    expectTypeOf<Effect.Effect.Context<typeof provided>>().toBeNever()
    expect(Option.map(Effect.runSync(provided), (c) => c.value)).toEqual(Option.some({ name: "Ada" }))
  })

  it("StrictDistributed may fail at startup with CacheBackendUnavailable and needs a RedisClient", () => {
    expectTypeOf(StrictDistributed).toEqualTypeOf<Layer.Layer<DistributedCache, CacheBackendUnavailable, RedisClient>>()
    expectTypeOf(strictDistributed({ cooldown: "1 second" })).toEqualTypeOf<
      Layer.Layer<DistributedCache, CacheBackendUnavailable, RedisClient>
    >()
    expectTypeOf<Layer.Layer.Error<typeof StrictDistributed>>().toEqualTypeOf<CacheBackendUnavailable>()
    expectTypeOf<Layer.Layer.Context<typeof StrictDistributed>>().toEqualTypeOf<RedisClient>()
    // @ts-expect-error a StrictDistributed Layer is not one that cannot fail
    const cannotFail: Layer.Layer<DistributedCache, never, RedisClient> = StrictDistributed
    expect(Layer.isLayer(cannotFail)).toBe(true)
    // without a RedisClient the program is not runnable
    const missingClient = program.pipe(Effect.provide(StrictDistributed))
    expectTypeOf<Effect.Effect.Context<typeof missingClient>>().toEqualTypeOf<RedisClient>()
    const complete = program.pipe(Effect.provide(StrictDistributed.pipe(Layer.provide(RedisClient.layer()))))
    expectTypeOf<Effect.Effect.Context<typeof complete>>().toBeNever()
    expectTypeOf<Effect.Effect.Error<typeof complete>>().toEqualTypeOf<
      CacheBackendUnavailable | CacheEntryInvalid | CacheValueInvalid
    >()
  })

  it("ExplicitDegraded cannot fail at startup and needs a RedisClient", () => {
    expectTypeOf(ExplicitDegraded).toEqualTypeOf<Layer.Layer<DistributedCache, never, RedisClient>>()
    expectTypeOf(explicitDegraded({ localCapacity: 10 })).toEqualTypeOf<
      Layer.Layer<DistributedCache, never, RedisClient>
    >()
    expectTypeOf<Layer.Layer.Error<typeof ExplicitDegraded>>().toBeNever()
    expectTypeOf<Layer.Layer.Context<typeof ExplicitDegraded>>().toEqualTypeOf<RedisClient>()
    // @ts-expect-error ExplicitDegraded is not LocalOnly: it does need a RedisClient
    const needsNothing: Layer.Layer<DistributedCache> = ExplicitDegraded
    expect(Layer.isLayer(needsNothing)).toBe(true)
  })

  it("RedisClient.layer cannot fail (Redis being down is the mode's business); layerConfig fails on bad Config", () => {
    expectTypeOf(RedisClient.layer({ url: "redis://127.0.0.1:1" })).toEqualTypeOf<Layer.Layer<RedisClient>>()
    expectTypeOf(RedisClient.layerConfig()).toEqualTypeOf<Layer.Layer<RedisClient, ConfigError.ConfigError>>()
    expect(Layer.isLayer(RedisClient.layerConfig())).toBe(true)
  })
})

describe("operation types", () => {
  it("every operation that can reach Redis has CacheBackendUnavailable in its error channel", () => {
    expectTypeOf(Users.get({ id: 1 })).toEqualTypeOf<
      Effect.Effect<Option.Option<Cached<User>>, CacheBackendUnavailable | CacheEntryInvalid, DistributedCache>
    >()
    expectTypeOf(Users.set({ id: 1 }, { name: "Ada" })).toEqualTypeOf<
      Effect.Effect<void, CacheBackendUnavailable | CacheValueInvalid, DistributedCache>
    >()
    expectTypeOf(Users.invalidate({ id: 1 })).toEqualTypeOf<
      Effect.Effect<boolean, CacheBackendUnavailable, DistributedCache>
    >()
    expectTypeOf(Users.clear({ tenant: "t" })).toEqualTypeOf<
      Effect.Effect<number, CacheBackendUnavailable, DistributedCache>
    >()
    const computed = Users.getOrCompute({ id: 1 }, Effect.fail("boom" as const))
    expectTypeOf(computed).toEqualTypeOf<
      Effect.Effect<Cached<User>, "boom" | CacheBackendUnavailable | CacheValueInvalid, DistributedCache>
    >()
    expectTypeOf<Effect.Effect.Success<DistributedCache["Type"]["stats"]>>().toEqualTypeOf<CacheStats>()
    expect(Effect.isEffect(computed)).toBe(true)
    // the stampede options change neither the success nor the error type (no timeout or lock error is made up)
    const underPressure = Users.getOrCompute({ id: 1 }, Effect.fail("boom" as const), {
      lock: true,
      lockTimeout: "2 seconds",
      staleWhileRevalidate: "30 seconds",
      staleIfError: "10 minutes",
      computeTimeout: "1 second"
    })
    expectTypeOf(underPressure).toEqualTypeOf<typeof computed>()
    expectTypeOf<Cached<User>["stale"]>().toEqualTypeOf<boolean>()
    expectTypeOf<Cached<User>["age"]>().toEqualTypeOf<Duration.Duration | undefined>()
  })

  it("get can fail with CacheEntryInvalid, getOrCompute cannot (it recomputes): catching it there is a type error", () => {
    expectTypeOf<Effect.Effect.Error<ReturnType<typeof Users.get>>>().toEqualTypeOf<
      CacheBackendUnavailable | CacheEntryInvalid
    >()
    const computed = Users.getOrCompute({ id: 1 }, Effect.succeed({ name: "Ada" }))
    expectTypeOf<Effect.Effect.Error<typeof computed>>().toEqualTypeOf<CacheBackendUnavailable | CacheValueInvalid>()
    // @ts-expect-error TS2769: getOrCompute's error channel has no CacheEntryInvalid to catch
    const copied = computed.pipe(Effect.catchTag("CacheEntryInvalid", () => Effect.succeed(undefined)))
    expect(Effect.isEffect(copied)).toBe(true)
  })

  it('Effect.catchTag("CacheBackendUnavailable", …) removes the error from the type', () => {
    const get = Users.get({ id: 1 }).pipe(
      Effect.catchTag("CacheBackendUnavailable", () => Effect.succeed(Option.none<Cached<User>>()))
    )
    expectTypeOf<Effect.Effect.Error<typeof get>>().toEqualTypeOf<CacheEntryInvalid>()
    const invalidate = Users.invalidate({ id: 1 }).pipe(
      Effect.catchTag("CacheBackendUnavailable", () => Effect.succeed(false))
    )
    expectTypeOf<Effect.Effect.Error<typeof invalidate>>().toBeNever()
    const set = Users.set({ id: 1 }, { name: "Ada" }).pipe(
      Effect.catchTag("CacheBackendUnavailable", () => Effect.void)
    )
    expectTypeOf<Effect.Effect.Error<typeof set>>().toEqualTypeOf<CacheValueInvalid>()
    const computed = Users.getOrCompute({ id: 1 }, Effect.succeed({ name: "Ada" })).pipe(
      Effect.catchTag("CacheBackendUnavailable", () => Effect.succeed(undefined))
    )
    expectTypeOf<Effect.Effect.Error<typeof computed>>().toEqualTypeOf<CacheValueInvalid>()
    // the whole program, degraded by hand and run with LocalOnly, cannot fail at all
    const total = program.pipe(
      Effect.catchTags({
        CacheBackendUnavailable: () => Effect.succeed(Option.none<Cached<User>>()),
        CacheEntryInvalid: () => Effect.succeed(Option.none<Cached<User>>()),
        CacheValueInvalid: () => Effect.succeed(Option.none<Cached<User>>())
      }),
      Effect.provide(LocalOnly)
    )
    expectTypeOf(total).toEqualTypeOf<Effect.Effect<Option.Option<Cached<User>>>>()
    // @ts-expect-error before the catch, the error channel is not empty
    const notTotal: Effect.Effect<Option.Option<Cached<User>>> = program.pipe(Effect.provide(LocalOnly))
    expect(Effect.isEffect(notTotal)).toBe(true)
    expect(Option.isSome(Effect.runSync(total))).toBe(true)
  })
})
