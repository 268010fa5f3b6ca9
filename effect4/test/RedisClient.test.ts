/**
 * The Effect 4 line's RedisClient: opened by the core's connection helpers (fail-fast options, secret scrubber),
 * closed with its scope; layerConfig reads REDIS_URL and friends through Effect 4's Config, an invalid value is a
 * ConfigError that never shows the password.
 */
import { assert, describe, it } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { RedisClient } from "effect-failclosed-effect4"
import { freePort, redisServer } from "./support/redis.js"

describe("RedisClient (Effect 4)", () => {
  it.live("connects, answers, and closes its connection with the scope", () =>
    Effect.gen(function* () {
      const redis = yield* redisServer()
      const client = yield* Effect.scoped(
        Effect.gen(function* () {
          const service = yield* RedisClient.make({ url: redis.url })
          yield* service.awaitReady(Duration.seconds(2))
          assert.strictEqual(yield* Effect.promise(() => service.client.ping()), "PONG")
          assert.strictEqual(service.description, `127.0.0.1:${redis.port}`)
          return service.client
        })
      )
      assert.strictEqual(client.status, "end")
    }).pipe(Effect.scoped)
  )

  it.live("awaitReady fails with a secret-free reason when nothing listens", () =>
    Effect.gen(function* () {
      const port = yield* Effect.promise(() => freePort())
      const reason = yield* Effect.flip(
        Effect.gen(function* () {
          const service = yield* RedisClient.make({
            url: `redis://:s3cret-pw@127.0.0.1:${port}`,
            connectTimeout: "100 millis"
          })
          return yield* service.awaitReady(Duration.millis(300))
        })
      )
      assert.include(reason, "no connection within")
      assert.notInclude(reason, "s3cret-pw")
    }).pipe(Effect.scoped)
  )

  it.effect("layerConfig turns an invalid REDIS_URL into a ConfigError without the password", () =>
    Effect.gen(function* () {
      const provider = ConfigProvider.fromEnv({ env: { REDIS_URL: "http://user:s3cret-pw@host:6379" } })
      const error = yield* Effect.flip(
        Effect.scoped(Layer.build(RedisClient.layerConfig())).pipe(Effect.provide(ConfigProvider.layer(provider)))
      )
      assert.strictEqual(error._tag, "ConfigError")
      assert.include(error.message, "REDIS_URL must start with redis://")
      assert.notInclude(error.message, "s3cret-pw")
    })
  )

  it("invalid options are a synchronous Error", () => {
    assert.throws(() => RedisClient.layer({ url: "http://x" }), /url must start with redis/)
    assert.throws(() => RedisClient.layer({ commandTimeout: "0 millis" }), /commandTimeout/)
  })
})
