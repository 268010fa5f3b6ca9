/**
 * The Effect 4 line's Redis modes against real redis-server processes: StrictDistributed fails closed at startup and
 * at runtime (a paused Redis is unavailable within the command timeout), ExplicitDegraded falls back node-locally,
 * marked, with one security event per transition.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import {
  DistributedCache,
  ExplicitDegraded,
  Keyspace,
  RateLimiter,
  RedisClient,
  ReplayGuard,
  StrictDistributed
} from "effect-failclosed-effect4"
import { freePort, redisServer } from "./support/redis.js"

const Profiles = Keyspace.make({
  name: "profiles",
  key: Schema.Struct({ id: Schema.Number }),
  value: Schema.Struct({ name: Schema.String }),
  timeToLive: "1 minute"
})

const client = (url: string) =>
  RedisClient.layer({ url, commandTimeout: "200 millis", connectTimeout: "200 millis", startupTimeout: "500 millis" })

/** a Logger that keeps every message (security events are logged as the event object) */
const capture = () => {
  const events: Array<{ readonly event: string }> = []
  const logger = Logger.make((options) => {
    const [first] = options.message as ReadonlyArray<unknown>
    if (typeof first === "object" && first !== null && "event" in first) events.push(first as { event: string })
  })
  return { events, layer: Logger.layer([logger]) }
}

describe("StrictDistributed (Effect 4)", () => {
  it.live("fails the Layer with CacheBackendUnavailable when Redis is down at startup, naming the alternatives", () =>
    Effect.gen(function* () {
      const port = yield* Effect.promise(() => freePort())
      const { events, layer } = capture()
      const error = yield* Effect.flip(
        Effect.scoped(Layer.build(StrictDistributed.pipe(Layer.provide(client(`redis://127.0.0.1:${port}`)))))
      ).pipe(Effect.provide(layer))
      assert.strictEqual(error._tag, "CacheBackendUnavailable")
      assert.strictEqual(error.operation, "startup")
      assert.include(error.message, "ExplicitDegraded")
      assert.deepStrictEqual(
        events.map((e) => e.event),
        ["BACKEND_UNAVAILABLE_AT_STARTUP"]
      )
    })
  )

  it.live("keeps entries, budgets and claims in Redis, shared by two caches on one Redis", () =>
    Effect.gen(function* () {
      const redis = yield* redisServer()
      const a = yield* Layer.build(StrictDistributed.pipe(Layer.provide(client(redis.url))))
      const b = yield* Layer.build(StrictDistributed.pipe(Layer.provide(client(redis.url))))
      yield* Profiles.set({ id: 1 }, { name: "Ada" }).pipe(Effect.provide(a))
      const read = yield* Profiles.get({ id: 1 }).pipe(Effect.provide(b))
      assert.deepStrictEqual(
        Option.map(read, (c) => [c.value.name, c.backend]),
        Option.some(["Ada", "redis"])
      )
      const Login = RateLimiter.make({ name: "login", limit: 3, window: "1 minute", algorithm: "sliding-window" })
      yield* Login.consume("ada").pipe(Effect.provide(a))
      yield* Login.consume("ada").pipe(Effect.provide(b))
      assert.strictEqual((yield* Login.consume("ada").pipe(Effect.provide(a))).remaining, 0)
      assert.isFalse((yield* Login.consume("ada").pipe(Effect.provide(b))).allowed)
      const Webhooks = ReplayGuard.make({ name: "webhooks", window: "1 minute" })
      yield* Webhooks.claim("n-1").pipe(Effect.provide(a))
      const replay = yield* Effect.flip(Webhooks.claim("n-1").pipe(Effect.provide(b)))
      assert.strictEqual(replay._tag, "ReplayDetected")
      assert.strictEqual(yield* Profiles.clear().pipe(Effect.provide(b)), 1)
      assert.strictEqual(yield* Effect.promise(() => redis.command("DBSIZE")), "3")
    }).pipe(Effect.scoped)
  )

  it.live("fails closed within the command timeout when Redis is paused, then recovers", () =>
    Effect.gen(function* () {
      const redis = yield* redisServer()
      const { events, layer } = capture()
      const cache = yield* Layer.build(StrictDistributed.pipe(Layer.provide(client(redis.url))))
      yield* Profiles.set({ id: 1 }, { name: "Ada" }).pipe(Effect.provide(cache))
      redis.pause()
      const started = Date.now()
      const error = yield* Effect.flip(Profiles.get({ id: 1 }).pipe(Effect.provide(cache), Effect.provide(layer)))
      assert.strictEqual(error._tag, "CacheBackendUnavailable")
      assert.isBelow(Date.now() - started, 1_500)
      // the cooldown: refused at once, without touching Redis
      const cooled = yield* Effect.flip(Profiles.get({ id: 1 }).pipe(Effect.provide(cache)))
      assert.include(cooled._tag === "CacheBackendUnavailable" ? cooled.reason : "", "cooldown")
      redis.resume()
      yield* Effect.sleep("700 millis")
      const back = yield* Profiles.get({ id: 1 }).pipe(Effect.provide(cache), Effect.provide(layer))
      assert.isTrue(Option.isSome(back))
      assert.deepStrictEqual(
        events.map((e) => e.event),
        ["BACKEND_UNAVAILABLE_AT_RUNTIME", "BACKEND_RECOVERED"]
      )
    }).pipe(Effect.scoped)
  )
})

describe("ExplicitDegraded (Effect 4)", () => {
  it.live("serves node-locally, marked degraded, while Redis is paused; invalidate still fails", () =>
    Effect.gen(function* () {
      const redis = yield* redisServer()
      const { events, layer } = capture()
      const cache = yield* Layer.build(ExplicitDegraded.pipe(Layer.provide(client(redis.url))))
      redis.pause()
      yield* Profiles.set({ id: 1 }, { name: "Local" }).pipe(Effect.provide(cache), Effect.provide(layer))
      const read = yield* Profiles.get({ id: 1 }).pipe(Effect.provide(cache))
      assert.deepStrictEqual(
        Option.map(read, (c) => [c.value.name, c.backend, c.degraded]),
        Option.some(["Local", "local_degraded", true])
      )
      const stats = yield* DistributedCache.use((c) => c.stats).pipe(Effect.provide(cache))
      assert.strictEqual(stats.backend, "local_degraded")
      const invalidate = yield* Effect.flip(Profiles.invalidate({ id: 1 }).pipe(Effect.provide(cache)))
      assert.strictEqual(invalidate._tag, "CacheBackendUnavailable")
      redis.resume()
      assert.deepStrictEqual(
        events.map((e) => e.event),
        ["BACKEND_UNAVAILABLE_AT_RUNTIME"]
      )
    }).pipe(Effect.scoped)
  )
})
