/**
 * Effect 4's own persistence modules on the DistributedCache: KeyValueStore and PersistedCache (through
 * BackingPersistence), on LocalOnly and on a real redis-server; an outage reaches them as their own errors with the
 * CacheBackendUnavailable as cause.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as EffectKeyValueStore from "effect/persistence/KeyValueStore"
import * as EffectRateLimiter from "effect/persistence/RateLimiter"
import * as Persistable from "effect/persistence/Persistable"
import * as PersistedCache from "effect/persistence/PersistedCache"
import * as Schema from "effect/Schema"
import {
  type DistributedCache,
  KeyValueStore,
  localOnly,
  Persistence,
  RateLimiterStore,
  RedisClient,
  StrictDistributed,
  TestCache
} from "effect-failclosed-effect4"
import { redisServer } from "./support/redis.js"

class GetUser extends Persistable.Class<{ payload: { readonly id: number } }>()("GetUser", {
  primaryKey: (payload) => `user:${payload.id}`,
  success: Schema.Struct({ name: Schema.String })
}) {}

const usersProgram = (lookups: { n: number }) =>
  Effect.gen(function* () {
    const users = yield* PersistedCache.make(
      (request: GetUser) => Effect.sync(() => ({ name: `user ${request.id} (${++lookups.n})` })),
      { storeId: "users", timeToLive: () => "1 minute", inMemoryCapacity: 0 }
    )
    const first = yield* users.get(new GetUser({ id: 1 }))
    const second = yield* users.get(new GetUser({ id: 1 }))
    return [first.name, second.name]
  })

const kvProgram = Effect.gen(function* () {
  const kv = yield* EffectKeyValueStore.KeyValueStore
  yield* kv.set("greeting", "hello")
  yield* kv.set("bytes", new Uint8Array([1, 2, 255]))
  const greeting = yield* kv.get("greeting")
  const bytes = yield* kv.getUint8Array("bytes")
  const asText = yield* kv.get("bytes")
  yield* kv.remove("greeting")
  return { greeting, bytes: [...(bytes ?? [])], asText, gone: yield* kv.has("greeting") }
})

describe("Effect 4 persistence modules on the DistributedCache", () => {
  it.effect("KeyValueStore and PersistedCache on LocalOnly", () =>
    Effect.gen(function* () {
      const cache = localOnly()
      const kv = yield* kvProgram.pipe(Effect.provide(KeyValueStore.layer({ name: "kv" }).pipe(Layer.provide(cache))))
      assert.deepStrictEqual(kv, { greeting: "hello", bytes: [1, 2, 255], asText: "AQL/", gone: false })
      const lookups = { n: 0 }
      const names = yield* usersProgram(lookups).pipe(
        Effect.scoped,
        Effect.provide(Persistence.layer().pipe(Layer.provide(cache)))
      )
      assert.deepStrictEqual(names, ["user 1 (1)", "user 1 (1)"])
    })
  )

  it.live("KeyValueStore and PersistedCache on StrictDistributed: entries in Redis, shared by two nodes", () =>
    Effect.gen(function* () {
      const redis = yield* redisServer()
      const node = () => StrictDistributed.pipe(Layer.provide(RedisClient.layer({ url: redis.url })))
      const kv = yield* kvProgram.pipe(Effect.provide(KeyValueStore.layer({ name: "kv" }).pipe(Layer.provide(node()))))
      assert.deepStrictEqual(kv, { greeting: "hello", bytes: [1, 2, 255], asText: "AQL/", gone: false })
      const lookups = { n: 0 }
      yield* usersProgram(lookups).pipe(Effect.scoped, Effect.provide(Persistence.layer().pipe(Layer.provide(node()))))
      // another node finds the persisted result: no second lookup
      const names = yield* usersProgram(lookups).pipe(
        Effect.scoped,
        Effect.provide(Persistence.layer().pipe(Layer.provide(node())))
      )
      assert.deepStrictEqual(names, ["user 1 (1)", "user 1 (1)"])
      const keys = (yield* Effect.promise(() => redis.command("KEYS", "*"))).split("\n").sort()
      assert.deepStrictEqual(
        keys.map((k) => k.replace(/[A-Za-z0-9_-]{24}$/, "<hash>")),
        ["fc:p:users:-:<hash>", "fc:v:kv:-:<hash>"]
      )
    }).pipe(Effect.scoped)
  )

  it.effect("an outage is the module's own error, with CacheBackendUnavailable as its cause", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        kvProgram.pipe(Effect.provide(KeyValueStore.layer({ name: "kv" }).pipe(Layer.provide(TestCache.Unavailable))))
      )
      assert.strictEqual(error._tag, "KeyValueStoreError")
      assert.strictEqual((error.cause as { _tag: string })._tag, "CacheBackendUnavailable")
    })
  )
})

describe("Effect 4's own RateLimiter on the DistributedCache", () => {
  const limiterOn = <E>(cache: Layer.Layer<DistributedCache, E>) =>
    EffectRateLimiter.layer.pipe(Layer.provide(RateLimiterStore.layer()), Layer.provide(cache))

  it.live(
    "fixed window and token bucket decide in Redis; the limit is shared by two nodes; an outage fails closed",
    () =>
      Effect.gen(function* () {
        const redis = yield* redisServer()
        const node = () => limiterOn(StrictDistributed.pipe(Layer.provide(RedisClient.layer({ url: redis.url }))))
        const consume = (algorithm: "fixed-window" | "token-bucket") =>
          Effect.flatMap(EffectRateLimiter.RateLimiter, (limiter: EffectRateLimiter.RateLimiter) =>
            limiter.consume({ key: `login:ada:${algorithm}`, limit: 2, window: "1 minute", algorithm })
          )
        for (const algorithm of ["fixed-window", "token-bucket"] as const) {
          const first = yield* consume(algorithm).pipe(Effect.provide(node()))
          assert.strictEqual(first.remaining, 1)
          yield* consume(algorithm).pipe(Effect.provide(node()))
          const denied = yield* Effect.flip(consume(algorithm).pipe(Effect.provide(node())))
          assert.strictEqual((denied as EffectRateLimiter.RateLimiterError).reason._tag, "RateLimitExceeded", algorithm)
        }
        const outage = yield* Effect.flip(
          consume("fixed-window").pipe(Effect.provide(limiterOn(TestCache.Unavailable)))
        )
        assert.strictEqual(outage.reason._tag, "RateLimitStoreError")
        assert.strictEqual((outage.reason as { cause?: { _tag?: string } }).cause?._tag, "CacheBackendUnavailable")
      }).pipe(Effect.scoped)
  )
})
