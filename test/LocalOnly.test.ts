import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Logger, Option, Schema } from "effect"
import {
  DistributedCache,
  explicitDegraded,
  Keyspace,
  LocalOnly,
  localOnly,
  RateLimiter,
  ReplayGuard,
  strictDistributed
} from "effect-failclosed"

const Items = Keyspace.make({ name: "items", key: Schema.String, value: Schema.Number, timeToLive: "1 minute" })

describe("LocalOnly", () => {
  it.effect("serves every feature from memory, marked local, with no RedisClient and no security event", () =>
    Effect.suspend(() => {
      const logged: Array<unknown> = []
      const logger = Logger.make(({ message }) => {
        logged.push(message)
      })
      return Effect.gen(function* () {
        yield* Items.set("a", 1, { tenant: "t" })
        expect(yield* Items.get("a", { tenant: "t" })).toEqual(
          Option.some({ value: 1, backend: "local", degraded: false, near: false, stale: false })
        )
        expect(yield* Items.getOrCompute("b", Effect.succeed(2))).toEqual({
          value: 2,
          backend: "local",
          degraded: false,
          near: false,
          stale: false
        })
        expect(yield* Items.invalidate("a", { tenant: "t" })).toBe(true)
        expect(yield* Items.clear()).toBe(1)
        const limiter = RateLimiter.make({ name: "l", limit: 1, window: "1 minute", algorithm: "fixed-window" })
        expect(yield* limiter.consume("s")).toMatchObject({ allowed: true, degraded: false })
        expect(yield* limiter.consume("s")).toMatchObject({ allowed: false, degraded: false })
        const guard = ReplayGuard.make({ name: "g", window: "1 minute" })
        yield* guard.claim("nonce")
        expect((yield* Effect.flip(guard.claim("nonce")))._tag).toBe("ReplayDetected")
        const stats = yield* Effect.flatMap(DistributedCache, (cache) => cache.stats)
        expect(stats).toMatchObject({ mode: "LocalOnly", backend: "local", degraded: false, failures: 0 })
        expect(logged).toEqual([])
      }).pipe(Effect.provide(LocalOnly), Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
    })
  )

  it.effect("each build of the Layer is its own memory", () =>
    Effect.gen(function* () {
      yield* Items.set("a", 1).pipe(Effect.provide(LocalOnly))
      expect(yield* Items.get("a").pipe(Effect.provide(LocalOnly))).toEqual(Option.none())
      // within one build, entries are shared
      yield* Effect.gen(function* () {
        yield* Items.set("a", 1)
        expect(Option.isSome(yield* Items.get("a"))).toBe(true)
      }).pipe(Effect.provide(Layer.fresh(LocalOnly)))
    })
  )

  it("invalid mode options are a synchronous Error, before anything touches Redis", () => {
    expect(() => localOnly({ capacity: 0 })).toThrow(/capacity must be a positive integer/)
    expect(() => localOnly({ capacity: 1.5 })).toThrow(/capacity must be a positive integer/)
    expect(() => localOnly({ keyPrefix: "a:b" })).toThrow(/keyPrefix must match/)
    expect(() => localOnly({ keyPrefix: "" })).toThrow(/keyPrefix must match/)
    expect(() => localOnly({ keyPrefix: "*" })).toThrow(/keyPrefix must match/)
    expect(() => strictDistributed({ cooldown: 0 })).toThrow(/cooldown must be a positive, finite duration/)
    expect(() => strictDistributed({ cooldown: "forever" as never })).toThrow(/cooldown/)
    expect(() => strictDistributed({ startupTimeout: -1 })).toThrow(/startupTimeout/)
    expect(() => explicitDegraded({ localCapacity: -1 })).toThrow(/localCapacity must be a positive integer/)
    expect(() => explicitDegraded({ keyPrefix: "x".repeat(65) })).toThrow(/keyPrefix must match/)
    expect(() => localOnly({ keyPrefix: "app.v2_x-1", capacity: 1 })).not.toThrow()
  })
})
