/**
 * effect-failclosed/Persistence: @effect/experimental's PersistedCache suite (the cases of its own
 * test/PersistedCache.test.ts) and the BackingPersistence contract, on a real redis-server, plus
 * store isolation, the outage cases (kill, pause) with the bounds of the core, and the modes.
 */
import * as PersistedCache from "@effect/experimental/PersistedCache"
import * as ExperimentalPersistence from "@effect/experimental/Persistence"
import { assert, describe, expect, expectTypeOf, it } from "@effect/vitest"
import * as fc from "fast-check"
import { Duration, Effect, Exit, Layer, Option, PrimaryKey, Schema } from "effect"
import {
  CacheBackendUnavailable,
  CacheValueInvalid,
  type DistributedCache,
  explicitDegraded,
  LocalOnly,
  strictDistributed
} from "effect-failclosed"
import { backendUnavailable, layerBacking, layerResult, storePrefix } from "effect-failclosed/Persistence"
import {
  clientLayer,
  COMMAND_TIMEOUT_MS,
  COOLDOWN_MS,
  eventKindsOf,
  failureOf,
  kill,
  SLACK_MS,
  timed,
  withLogs
} from "./support/modeTests.js"
import { seeded } from "./support/property.js"
import { redisServer } from "./support/RedisServer.js"

class User extends Schema.Class<User>("User")({
  id: Schema.Number,
  name: Schema.String
}) {}

class GetUser extends Schema.TaggedRequest<GetUser>()("GetUser", {
  failure: Schema.String,
  success: User,
  payload: { id: Schema.Number }
}) {
  [PrimaryKey.symbol]() {
    return `GetUser:${this.id}`
  }
}

const strictLayer = (url: string) =>
  strictDistributed({ cooldown: Duration.millis(COOLDOWN_MS) }).pipe(Layer.provide(clientLayer(url)))
const degradedLayer = (url: string) =>
  explicitDegraded({ cooldown: Duration.millis(COOLDOWN_MS) }).pipe(Layer.provide(clientLayer(url)))

/** the Persistence services over one cache */
const persistenceOn = <E>(cache: Layer.Layer<DistributedCache, E>) =>
  Layer.mergeAll(layerResult(), layerBacking()).pipe(Layer.provide(cache))

/** a fresh redis-server (stopped with the scope) and the Persistence services over a cache of `mode` on it */
const onFreshRedis = <E>(mode: (url: string) => Layer.Layer<DistributedCache, E>) =>
  Effect.gen(function* () {
    const redis = yield* redisServer()
    const context = yield* Layer.build(persistenceOn(mode(redis.url)))
    return { redis, context }
  })

/** a PersistedCache of users that counts its lookups; `fail` ids look up to a failure */
const usersCache = (counter: { invocations: number }) =>
  PersistedCache.make({
    storeId: "users",
    lookup: (request: GetUser) =>
      Effect.sync(() => {
        counter.invocations++
        return request.id < 0 ? Exit.fail("no such user") : Exit.succeed(new User({ id: request.id, name: "John" }))
      }).pipe(Effect.flatten),
    timeToLive: () => 5_000,
    inMemoryTTL: 0
  })

/** the Redis keys of a harness server */
const keysOf = (redis: { command: (...args: Array<string>) => Promise<string> }) =>
  Effect.promise(() => redis.command("KEYS", "*")).pipe(Effect.map((out) => out.split("\n").filter((k) => k !== "")))

describe("Persistence: @effect/experimental's PersistedCache suite on Redis", () => {
  it.scopedLive("a lookup is persisted once and served from Redis to a new PersistedCache", () =>
    Effect.gen(function* () {
      const { context } = yield* onFreshRedis(strictLayer)
      yield* Effect.gen(function* () {
        const persistence = yield* ExperimentalPersistence.ResultPersistence
        const store = yield* persistence.make({ storeId: "users" })
        const counter = { invocations: 0 }
        let cache = yield* usersCache(counter)
        assert.deepStrictEqual(yield* cache.get(new GetUser({ id: 1 })), new User({ id: 1, name: "John" }))
        assert.deepStrictEqual(
          yield* store.get(new GetUser({ id: 1 })),
          Option.some(Exit.succeed(new User({ id: 1, name: "John" })))
        )
        assert.strictEqual(counter.invocations, 1)
        assert.deepStrictEqual(yield* cache.get(new GetUser({ id: 1 })), new User({ id: 1, name: "John" }))
        assert.strictEqual(counter.invocations, 1)

        // a new PersistedCache (another node, a restart) finds it in Redis
        cache = yield* usersCache(counter)
        assert.deepStrictEqual(yield* cache.get(new GetUser({ id: 1 })), new User({ id: 1, name: "John" }))
        assert.strictEqual(counter.invocations, 1)

        // a failed lookup is persisted as a failure, and invalidate removes it from Redis
        expect(yield* Effect.flip(cache.get(new GetUser({ id: -1 })))).toBe("no such user")
        assert.deepStrictEqual(yield* store.get(new GetUser({ id: -1 })), Option.some(Exit.fail("no such user")))
        yield* cache.invalidate(new GetUser({ id: -1 }))
        assert.deepStrictEqual(yield* store.get(new GetUser({ id: -1 })), Option.none())
        assert.strictEqual(counter.invocations, 2)
      }).pipe(Effect.provide(context))
    })
  )
})

describe("Persistence: key layout and types", () => {
  it("no store's prefix starts another store's or a Keyspace's, whatever characters the store ids hold", () => {
    const { numRuns, seed } = seeded("Persistence.test.ts")
    fc.assert(
      fc.property(fc.string({ unit: "binary" }), fc.string({ unit: "binary" }), (a, b) => {
        fc.pre(a !== b)
        // clear(a) deletes keys starting with storePrefix(a): none of b's can
        expect(storePrefix("fc", b).startsWith(storePrefix("fc", a))).toBe(false)
        // a Keyspace partition is "fc:k:…", never "fc:p:…"
        expect(/^fc:p:[A-Za-z0-9._~-]+:$/.test(storePrefix("fc", a))).toBe(true)
      }),
      { numRuns, seed }
    )
  })

  it("the layers need a DistributedCache and cannot fail to build", () => {
    expectTypeOf(layerResult()).toEqualTypeOf<
      Layer.Layer<ExperimentalPersistence.ResultPersistence, never, DistributedCache>
    >()
    expectTypeOf(layerBacking()).toEqualTypeOf<
      Layer.Layer<ExperimentalPersistence.BackingPersistence, never, DistributedCache>
    >()
    // over LocalOnly they need nothing at all
    expectTypeOf(layerResult().pipe(Layer.provide(LocalOnly))).toEqualTypeOf<
      Layer.Layer<ExperimentalPersistence.ResultPersistence>
    >()
  })
})

describe("Persistence: the BackingPersistence contract on Redis", () => {
  it.scopedLive("get, getMany, set with and without a time to live, setMany, remove, clear", () =>
    Effect.gen(function* () {
      const { context, redis } = yield* onFreshRedis(strictLayer)
      yield* Effect.gen(function* () {
        const backing = yield* ExperimentalPersistence.BackingPersistence
        const store = yield* backing.make("s")
        expect(yield* store.get("missing")).toEqual(Option.none())
        yield* store.set("a", { n: 1, s: "é\u{1F600}" }, Option.none())
        yield* store.set("b", [1, null, "x"], Option.some(Duration.minutes(1)))
        yield* store.set("e", "soon gone", Option.some(Duration.millis(200)))
        expect(yield* store.get("a")).toEqual(Option.some({ n: 1, s: "é\u{1F600}" }))
        expect(yield* store.getMany(["a", "b", "c"])).toEqual([
          Option.some({ n: 1, s: "é\u{1F600}" }),
          Option.some([1, null, "x"]),
          Option.none()
        ])
        // the time to live is Redis' own (PX); keys are hashed under the store's prefix
        const keys = yield* keysOf(redis)
        expect(keys.every((k) => k.startsWith(storePrefix("fc", "s")))).toBe(true)
        const ttls = (yield* Effect.forEach(keys, (k) => Effect.promise(() => redis.command("PTTL", k)))).map(Number)
        expect(ttls.filter((t) => t === -1)).toHaveLength(1)
        expect(ttls.filter((t) => t > 30_000 && t <= 60_000)).toHaveLength(1)
        yield* Effect.sleep("400 millis")
        expect(yield* store.get("e")).toEqual(Option.none())
        yield* store.remove("b")

        yield* store.setMany([
          ["c", 3, Option.none()],
          ["d", 4, Option.some(Duration.minutes(1))]
        ])
        expect(yield* store.getMany(["c", "d"])).toEqual([Option.some(3), Option.some(4)])
        // a time to live of zero writes nothing and leaves nothing behind
        yield* store.set("c", 33, Option.some(Duration.zero))
        expect(yield* store.get("c")).toEqual(Option.none())
        yield* store.remove("d")
        expect(yield* store.get("d")).toEqual(Option.none())
        yield* store.clear
        expect(yield* store.get("a")).toEqual(Option.none())
        expect(yield* keysOf(redis)).toEqual([])
      }).pipe(Effect.scoped, Effect.provide(context))
    })
  )

  it.scopedLive("stores never share keys: clear and equal keys stay within one storeId", () =>
    Effect.gen(function* () {
      const { context, redis } = yield* onFreshRedis(strictLayer)
      yield* Effect.gen(function* () {
        const backing = yield* ExperimentalPersistence.BackingPersistence
        // store ids that would collide under a naive `${storeId}:${key}` layout
        const a = yield* backing.make("users")
        const b = yield* backing.make("users:x")
        const c = yield* backing.make("users*")
        yield* a.set("x:1", "a", Option.none())
        yield* b.set("1", "b", Option.none())
        yield* c.set("x:1", "c", Option.none())
        expect(yield* a.get("x:1")).toEqual(Option.some("a"))
        expect(yield* b.get("1")).toEqual(Option.some("b"))
        expect(yield* c.get("x:1")).toEqual(Option.some("c"))
        const keys = yield* keysOf(redis)
        expect(keys).toHaveLength(3)
        for (const [id, count] of [
          ["users", 1],
          ["users:x", 1],
          ["users*", 1]
        ] as const) {
          expect(keys.filter((k) => k.startsWith(storePrefix("fc", id)))).toHaveLength(count)
        }
        yield* c.clear
        expect(yield* a.get("x:1")).toEqual(Option.some("a"))
        expect(yield* b.get("1")).toEqual(Option.some("b"))
        expect(yield* keysOf(redis)).toHaveLength(2)
      }).pipe(Effect.scoped, Effect.provide(context))
    })
  )

  it.effect("a value that cannot be stored fails with a CacheValueInvalid cause and writes nothing", () =>
    Effect.gen(function* () {
      const backing = yield* ExperimentalPersistence.BackingPersistence
      const store = yield* backing.make("s")
      for (const value of [10n, undefined, "x".repeat(2_000)]) {
        const error = yield* Effect.flip(store.set("k", value, Option.none()))
        assert(error.reason === "BackingError")
        expect(error.method).toBe("set")
        expect(error.cause).toBeInstanceOf(CacheValueInvalid)
        expect(Option.isNone(backendUnavailable(error))).toBe(true)
      }
      expect(yield* store.get("k")).toEqual(Option.none())
      // one bad value in a batch: the batch fails before any of its entries is written
      const error = yield* Effect.flip(
        store.setMany([
          ["a", 1, Option.none()],
          ["b", 10n, Option.none()],
          ["c", 3, Option.none()]
        ])
      )
      assert(error.reason === "BackingError")
      expect(error.method).toBe("setMany")
      expect(error.cause).toBeInstanceOf(CacheValueInvalid)
      expect(yield* store.getMany(["a", "b", "c"])).toEqual([Option.none(), Option.none(), Option.none()])
    }).pipe(Effect.scoped, Effect.provide(layerBacking({ maxValueBytes: 1_000 }).pipe(Layer.provide(LocalOnly))))
  )
})

describe("Persistence: Redis unavailable", () => {
  for (const how of ["killed", "paused"] as const) {
    it.scopedLive(
      `${how}: StrictDistributed fails closed with a PersistenceError caused by CacheBackendUnavailable within commandTimeout`,
      () =>
        withLogs((logs) =>
          Effect.gen(function* () {
            const { context, redis } = yield* onFreshRedis(strictLayer)
            yield* Effect.gen(function* () {
              const counter = { invocations: 0 }
              const cache = yield* usersCache(counter)
              yield* cache.get(new GetUser({ id: 1 }))
              if (how === "killed") yield* kill(redis)
              else redis.pause()
              const [exit, elapsed] = yield* timed(cache.get(new GetUser({ id: 2 })))
              const error = failureOf(exit)
              assert(typeof error !== "string" && error.reason === "BackingError")
              expect(error.method).toBe("get")
              const unavailable = backendUnavailable(error)
              assert(Option.isSome(unavailable))
              expect(unavailable.value).toBeInstanceOf(CacheBackendUnavailable)
              expect(unavailable.value.mode).toBe("StrictDistributed")
              expect(elapsed).toBeLessThan(COMMAND_TIMEOUT_MS + 100)
              // the lookup never ran on a node-local guess
              expect(counter.invocations).toBe(1)

              // every store method fails closed, during the cooldown at once
              const backing = yield* ExperimentalPersistence.BackingPersistence
              const store = yield* backing.make("users")
              for (const [method, call] of [
                ["set", store.set("k", 1, Option.none())],
                ["setMany", store.setMany([["k", 1, Option.none()]])],
                ["getMany", store.getMany(["k"])],
                ["remove", store.remove("k")],
                ["clear", store.clear]
              ] as const) {
                const [exit, elapsed] = yield* timed(call)
                const error = failureOf(exit as Exit.Exit<unknown, ExperimentalPersistence.PersistenceError>)
                assert(error.reason === "BackingError")
                expect(error.method).toBe(method)
                expect(Option.isSome(backendUnavailable(error)), method).toBe(true)
                expect(elapsed, method).toBeLessThan(COMMAND_TIMEOUT_MS + 100)
              }
              if (how === "paused") redis.resume()
            }).pipe(Effect.scoped, Effect.provide(context))
            expect(eventKindsOf("StrictDistributed")(logs)).toContain("BACKEND_UNAVAILABLE_AT_RUNTIME")
          })
        )
    )
  }

  it.scopedLive(
    "PersistedCache's own in-memory tier (inMemoryTTL) serves its hits and repeats its failures, node-locally",
    () =>
      withLogs(() =>
        Effect.gen(function* () {
          const { context, redis } = yield* onFreshRedis(strictLayer)
          yield* Effect.gen(function* () {
            const counter = { invocations: 0 }
            const cache = yield* PersistedCache.make({
              storeId: "users",
              lookup: (request: GetUser) =>
                Effect.sync(() => new User({ id: request.id, name: `n${++counter.invocations}` })),
              timeToLive: () => "1 minute",
              inMemoryTTL: "1 minute"
            })
            yield* cache.get(new GetUser({ id: 1 }))
            yield* kill(redis)
            // not this library's doing: PersistedCache answers from its own memory, whatever the mode
            expect((yield* cache.get(new GetUser({ id: 1 }))).name).toBe("n1")
            const failed = yield* Effect.flip(cache.get(new GetUser({ id: 2 })))
            assert(typeof failed !== "string" && Option.isSome(backendUnavailable(failed)))
            yield* Effect.promise(() => redis.restart())
            yield* Effect.sleep(Duration.millis(COOLDOWN_MS + SLACK_MS))
            // the failure is cached too, until inMemoryTTL passes or the key is invalidated
            expect(yield* Effect.flip(cache.get(new GetUser({ id: 2 })))).toBe(failed)
            yield* cache.invalidate(new GetUser({ id: 2 }))
            expect((yield* cache.get(new GetUser({ id: 2 }))).name).toBe("n2")
          }).pipe(Effect.scoped, Effect.provide(context))
        })
      )
  )

  it.scopedLive("ExplicitDegraded serves get/set node-locally and still fails remove and clear", () =>
    withLogs(() =>
      Effect.gen(function* () {
        const { context, redis } = yield* onFreshRedis(degradedLayer)
        yield* Effect.gen(function* () {
          const backing = yield* ExperimentalPersistence.BackingPersistence
          const store = yield* backing.make("users")
          yield* kill(redis)
          const [exit, elapsed] = yield* timed(store.set("k", { n: 1 }, Option.none()))
          expect(Exit.isSuccess(exit)).toBe(true)
          expect(elapsed).toBeLessThan(COMMAND_TIMEOUT_MS + 100)
          expect(yield* store.get("k")).toEqual(Option.some({ n: 1 }))
          for (const call of [store.remove("k"), store.clear]) {
            const error = yield* Effect.flip(call)
            expect(Option.map(backendUnavailable(error), (e) => e.mode)).toEqual(Option.some("ExplicitDegraded"))
          }
        }).pipe(Effect.scoped, Effect.provide(context))
      })
    )
  )

  it.effect("LocalOnly needs no Redis: PersistedCache runs on node memory", () =>
    Effect.gen(function* () {
      const counter = { invocations: 0 }
      const cache = yield* usersCache(counter)
      yield* cache.get(new GetUser({ id: 1 }))
      const again = yield* usersCache(counter)
      assert.deepStrictEqual(yield* again.get(new GetUser({ id: 1 })), new User({ id: 1, name: "John" }))
      expect(counter.invocations).toBe(1)
    }).pipe(Effect.scoped, Effect.provide(layerResult().pipe(Layer.provide(LocalOnly))))
  )
})
