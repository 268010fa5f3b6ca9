import { describe, expect, it } from "@effect/vitest"
import { Cause, Duration, Effect, Exit, Layer, Option } from "effect"
import { DistributedCache, explicitDegraded, SecurityEvent } from "effect-failclosed"
import {
  clientLayer,
  COMMAND_TIMEOUT_MS,
  COOLDOWN_MS,
  duringCooldown,
  eventKindsOf,
  Items,
  kill,
  RECONNECT_MS,
  restart,
  SLACK_MS,
  STARTUP_TIMEOUT_MS,
  timed,
  unavailableIn,
  withLogs,
  cacheOnFreshRedis
} from "./support/modeTests.js"
import { type RedisServer, redisServer } from "./support/RedisServer.js"

const degradedLayer = (url: string) =>
  explicitDegraded({ cooldown: Duration.millis(COOLDOWN_MS) }).pipe(Layer.provide(clientLayer(url)))

const fromRedis = (n: number) =>
  Option.some({ value: { n }, backend: "redis", degraded: false, near: false, stale: false })
const fromFallback = (n: number) =>
  Option.some({ value: { n }, backend: "local_degraded", degraded: true, near: false, stale: false })

// --- helpers ---------------------------------------------------------------------------------------------------------

const eventKinds = eventKindsOf("ExplicitDegraded")
const unavailable = unavailableIn("ExplicitDegraded")

/** retries `self` every 10 ms until `done` holds for its value; the value and the time it took */
const eventually = <A, E, R>(self: Effect.Effect<A, E, R>, done: (a: A) => boolean, deadlineMs: number) =>
  Effect.gen(function* () {
    const start = performance.now()
    for (;;) {
      const value = yield* self
      const elapsed = performance.now() - start
      if (done(value)) return [value, elapsed] as const
      if (elapsed > deadlineMs) return yield* Effect.dieMessage(`not done within ${deadlineMs} ms`)
      yield* Effect.sleep("10 millis")
    }
  })

const stats = Effect.flatMap(DistributedCache, (cache) => cache.stats)

/** get/set are served by the fallback, marked; invalidate and clear fail closed */
const expectServedDegraded = (run: <A, E>(self: Effect.Effect<A, E, DistributedCache>) => Effect.Effect<A, E>) =>
  Effect.gen(function* () {
    yield* run(Items.set("outage", { n: 99 }))
    expect(yield* run(Items.get("outage"))).toEqual(fromFallback(99))
    expect(yield* run(Items.getOrCompute("computed", Effect.succeed({ n: 7 })))).toEqual({
      value: { n: 7 },
      backend: "local_degraded",
      degraded: true,
      near: false,
      stale: false
    })
    // a computed value that is not stored is marked like the degraded miss it answers
    expect(yield* run(Items.getOrCompute("uncached", Effect.succeed({ n: 8 }), { shouldCache: () => false }))).toEqual({
      value: { n: 8 },
      backend: "local_degraded",
      degraded: true,
      near: false,
      stale: false
    })
    unavailable(yield* Effect.exit(run(Items.invalidate("outage"))), "invalidate")
    unavailable(yield* Effect.exit(run(Items.clear())), "clear")
    unavailable(yield* Effect.exit(run(Items.clear({ allTenants: true }))), "clear")
    // still there: a failed invalidate did not delete node-locally either
    expect(yield* run(Items.get("outage"))).toEqual(fromFallback(99))
    expect(yield* run(stats)).toMatchObject({
      mode: "ExplicitDegraded",
      backend: "local_degraded",
      degraded: true
    })
  })

/**
 * After recovery: served by Redis again, the fallback is empty, and a later outage starts from an empty fallback
 * (the value set during the previous outage is never served again).
 */
const expectFallbackDropped = (
  redis: RedisServer,
  run: <A, E>(self: Effect.Effect<A, E, DistributedCache>) => Effect.Effect<A, E>
) =>
  Effect.gen(function* () {
    expect(yield* run(Items.get("outage"))).toEqual(Option.none())
    expect(yield* run(stats)).toMatchObject({ backend: "redis", degraded: false, localEntries: 0 })
    yield* kill(redis)
    expect(yield* run(Items.get("outage"))).toEqual(Option.none())
    expect(yield* run(Items.get("computed"))).toEqual(Option.none())
    expect(yield* run(stats)).toMatchObject({ backend: "local_degraded", degraded: true })
  })

// --- tests -----------------------------------------------------------------------------------------------------------

describe("ExplicitDegraded: Redis down at startup", () => {
  for (const how of ["killed", "paused"] as const) {
    it.scopedLive(`${how}: one startup event, marked node-local results, then recovery drops the fallback`, () =>
      withLogs((logs) =>
        Effect.gen(function* () {
          const redis = yield* redisServer()
          if (how === "killed") yield* kill(redis)
          else redis.pause()
          const [built, buildMs] = yield* timed(Layer.build(degradedLayer(redis.url)))
          expect(buildMs).toBeLessThan(STARTUP_TIMEOUT_MS + SLACK_MS)
          if (Exit.isFailure(built)) throw new Error(Cause.pretty(built.cause))
          const run = <A, E>(self: Effect.Effect<A, E, DistributedCache>) => Effect.provide(self, built.value)
          expect(eventKinds(logs)).toEqual(["BACKEND_UNAVAILABLE_AT_STARTUP"])
          const startup = (logs[0]!.message as ReadonlyArray<SecurityEvent>)[0]!
          expect(startup.detail).toContain(`127.0.0.1:${redis.port}`)

          // during the cooldown the fallback answers at once
          for (const exit of yield* duringCooldown(run(Items.get("a")))) {
            expect(exit).toEqual(Exit.succeed(Option.none()))
          }
          yield* expectServedDegraded(run)
          // later probes that fail (Redis still down) are not new transitions
          yield* Effect.sleep(Duration.millis(COOLDOWN_MS + 20))
          expect(yield* run(Items.get("outage"))).toEqual(fromFallback(99))
          expect(eventKinds(logs)).toEqual(["BACKEND_UNAVAILABLE_AT_STARTUP"])

          if (how === "killed") yield* restart(redis)
          else redis.resume()
          const [, recoveredMs] = yield* eventually(
            run(Items.get("outage")),
            (o) => Option.isNone(o) || o.value.backend === "redis",
            5_000
          )
          expect(recoveredMs).toBeLessThan(COOLDOWN_MS + RECONNECT_MS + SLACK_MS)
          yield* run(Items.set("a", { n: 1 }))
          expect(yield* run(Items.get("a"))).toEqual(fromRedis(1))
          expect(eventKinds(logs)).toEqual(["BACKEND_UNAVAILABLE_AT_STARTUP", "BACKEND_RECOVERED"])
          yield* expectFallbackDropped(redis, run)
          expect(eventKinds(logs)).toEqual([
            "BACKEND_UNAVAILABLE_AT_STARTUP",
            "BACKEND_RECOVERED",
            "BACKEND_UNAVAILABLE_AT_RUNTIME"
          ])
        })
      )
    )
  }
})

describe("ExplicitDegraded: Redis fails at runtime", () => {
  it.scopedLive("killed: one event for 20 concurrent calls, marked node-local results, recovery after a restart", () =>
    withLogs((logs) =>
      Effect.gen(function* () {
        const { redis, run } = yield* cacheOnFreshRedis(degradedLayer)
        yield* run(Items.set("a", { n: 1 }))
        expect(yield* run(Items.get("a"))).toEqual(fromRedis(1))
        expect(logs).toEqual([])

        yield* kill(redis)
        const results = yield* Effect.all(
          Array.from({ length: 20 }, (_, i) => timed(run(Items.get(`k${i}`)))),
          { concurrency: "unbounded" }
        )
        for (const [exit, elapsed] of results) {
          expect(exit).toEqual(Exit.succeed(Option.none()))
          expect(elapsed).toBeLessThan(COMMAND_TIMEOUT_MS + 100)
        }
        expect(eventKinds(logs)).toEqual(["BACKEND_UNAVAILABLE_AT_RUNTIME"])
        // the Redis value is not known node-locally: a miss, never a stale copy
        for (const exit of yield* duringCooldown(run(Items.get("a")))) {
          expect(exit).toEqual(Exit.succeed(Option.none()))
        }
        yield* expectServedDegraded(run)

        yield* restart(redis)
        const [, recoveredMs] = yield* eventually(
          run(Items.get("outage")),
          (o) => Option.isNone(o) || o.value.backend === "redis",
          5_000
        )
        expect(recoveredMs).toBeLessThan(COOLDOWN_MS + RECONNECT_MS + SLACK_MS)
        yield* run(Items.set("a", { n: 2 }))
        expect(yield* run(Items.get("a"))).toEqual(fromRedis(2))
        expect(eventKinds(logs)).toEqual(["BACKEND_UNAVAILABLE_AT_RUNTIME", "BACKEND_RECOVERED"])
        yield* expectFallbackDropped(redis, run)
        expect(eventKinds(logs)).toEqual([
          "BACKEND_UNAVAILABLE_AT_RUNTIME",
          "BACKEND_RECOVERED",
          "BACKEND_UNAVAILABLE_AT_RUNTIME"
        ])
      })
    )
  )

  it.scopedLive(
    "paused: falls back within commandTimeout + 100 ms, and after a resume Redis' value is served again",
    () =>
      withLogs((logs) =>
        Effect.gen(function* () {
          const { redis, run } = yield* cacheOnFreshRedis(degradedLayer)
          yield* run(Items.set("outage", { n: 1 }))

          redis.pause()
          const results = yield* Effect.all(
            Array.from({ length: 20 }, (_, i) => timed(run(Items.get(`k${i}`)))),
            { concurrency: "unbounded" }
          )
          for (const [exit, elapsed] of results) {
            expect(exit).toEqual(Exit.succeed(Option.none()))
            expect(elapsed).toBeGreaterThanOrEqual(COMMAND_TIMEOUT_MS - 20)
            expect(elapsed).toBeLessThan(COMMAND_TIMEOUT_MS + 100)
          }
          expect(eventKinds(logs)).toEqual(["BACKEND_UNAVAILABLE_AT_RUNTIME"])
          for (const exit of yield* duringCooldown(run(Items.get("a")))) {
            expect(exit).toEqual(Exit.succeed(Option.none()))
          }
          // written during the cooldown: to the fallback only, Redis is not contacted
          yield* expectServedDegraded(run)

          redis.resume()
          const [value, recoveredMs] = yield* eventually(
            run(Items.get("outage")),
            (o) => Option.isSome(o) && o.value.backend === "redis",
            5_000
          )
          expect(recoveredMs).toBeLessThan(COOLDOWN_MS + SLACK_MS)
          // Redis' value, not the one set node-locally during the outage
          expect(value).toEqual(fromRedis(1))
          expect(yield* run(Items.get("computed"))).toEqual(Option.none())
          expect(eventKinds(logs)).toEqual(["BACKEND_UNAVAILABLE_AT_RUNTIME", "BACKEND_RECOVERED"])
          expect(yield* run(stats)).toMatchObject({ backend: "redis", degraded: false, localEntries: 0 })
        })
      )
  )
})
