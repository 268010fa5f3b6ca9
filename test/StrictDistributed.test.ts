import { describe, expect, it } from "@effect/vitest"
import { Context, Duration, Effect, Exit, Layer, Option } from "effect"
import { CacheBackendUnavailable, DistributedCache, RedisClient, strictDistributed } from "effect-failclosed"
import {
  clientLayer,
  COMMAND_TIMEOUT_MS,
  COOLDOWN_MS,
  duringCooldown,
  eventKindsOf,
  failureOf,
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
import { redisServer } from "./support/RedisServer.js"

const strictLayer = (url: string, cooldownMillis = COOLDOWN_MS) =>
  strictDistributed({ cooldown: Duration.millis(cooldownMillis) }).pipe(Layer.provide(clientLayer(url)))

// --- helpers ---------------------------------------------------------------------------------------------------------

const eventKinds = eventKindsOf("StrictDistributed")
const unavailable = unavailableIn("StrictDistributed")

/** retries `self` every 10 ms until it succeeds; the value and the time it took */
const eventually = <A, E, R>(self: Effect.Effect<A, E, R>, deadlineMs: number) =>
  Effect.gen(function* () {
    const start = performance.now()
    for (;;) {
      const exit = yield* Effect.exit(self)
      const elapsed = performance.now() - start
      if (Exit.isSuccess(exit)) return [exit.value, elapsed] as const
      if (elapsed > deadlineMs) return yield* Effect.dieMessage(`no success within ${deadlineMs} ms`)
      yield* Effect.sleep("10 millis")
    }
  })

// --- tests -----------------------------------------------------------------------------------------------------------

describe("StrictDistributed: Redis down at startup", () => {
  for (const how of ["killed", "paused"] as const) {
    it.scopedLive(`the Layer fails with CacheBackendUnavailable when Redis is ${how}`, () =>
      withLogs((logs) =>
        Effect.gen(function* () {
          const redis = yield* redisServer()
          if (how === "killed") yield* kill(redis)
          else redis.pause()
          const [exit, elapsed] = yield* timed(Effect.scoped(Layer.build(strictLayer(redis.url))))
          const error = unavailable(exit, "startup")
          expect(error.message).toContain("ExplicitDegraded")
          expect(error.message).toContain("LocalOnly")
          expect(error.reason).toMatch(how === "killed" ? /ECONNREFUSED|not connected/ : /no connection within/)
          expect(elapsed).toBeLessThan(STARTUP_TIMEOUT_MS + SLACK_MS)
          expect(eventKinds(logs)).toEqual(["BACKEND_UNAVAILABLE_AT_STARTUP"])
          if (how === "paused") {
            // the same Layer builds once Redis answers
            redis.resume()
            yield* Effect.scoped(Layer.build(strictLayer(redis.url)))
          }
        })
      )
    )
  }
})

describe("StrictDistributed: Redis fails at runtime", () => {
  it.scopedLive(
    "killed: fails closed within commandTimeout + 100 ms, at once during the cooldown, and recovers after a restart",
    () =>
      withLogs((logs) =>
        Effect.gen(function* () {
          const { redis, run } = yield* cacheOnFreshRedis(strictLayer)

          yield* run(Items.set("a", { n: 1 }))
          expect(yield* run(Items.get("a"))).toEqual(
            Option.some({ value: { n: 1 }, backend: "redis", degraded: false, near: false, stale: false })
          )

          yield* kill(redis)
          const [first, firstMs] = yield* timed(run(Items.get("a")))
          expect(unavailable(first, "get").reason).not.toMatch(/cooldown/)
          expect(firstMs).toBeLessThan(COMMAND_TIMEOUT_MS + 100)

          for (const exit of yield* duringCooldown(run(Items.get("a")))) {
            expect(unavailable(exit, "get").reason).toMatch(/cooldown/)
          }
          // every operation fails closed during the cooldown
          unavailable(yield* Effect.exit(run(Items.set("a", { n: 2 }))), "set")
          unavailable(yield* Effect.exit(run(Items.invalidate("a"))), "invalidate")
          unavailable(yield* Effect.exit(run(Items.clear())), "clear")
          unavailable(yield* Effect.exit(run(Items.getOrCompute("a", Effect.succeed({ n: 3 })))), "getOrCompute")

          yield* restart(redis)
          const [value, recoveredMs] = yield* eventually(run(Items.get("a")), 5_000)
          expect(recoveredMs).toBeLessThan(COOLDOWN_MS + RECONNECT_MS + SLACK_MS)
          // a fresh server: nothing was kept anywhere else
          expect(value).toEqual(Option.none())
          yield* run(Items.set("a", { n: 4 }))
          expect(yield* run(Items.get("a"))).toEqual(
            Option.some({ value: { n: 4 }, backend: "redis", degraded: false, near: false, stale: false })
          )
          expect(eventKinds(logs)).toEqual(["BACKEND_UNAVAILABLE_AT_RUNTIME", "BACKEND_RECOVERED"])
        })
      )
  )

  it.scopedLive(
    "paused: 20 concurrent calls fail within commandTimeout + 100 ms with one event, the cooldown fails at once, a resume recovers",
    () =>
      withLogs((logs) =>
        Effect.gen(function* () {
          const { redis, run } = yield* cacheOnFreshRedis(strictLayer)
          yield* run(Items.set("a", { n: 1 }))

          redis.pause()
          // gets and sets (batched together) and clears (SCAN, one deadline per command) alike
          const call = (i: number): Effect.Effect<unknown, unknown> =>
            i % 4 === 3 ? run(Items.clear()) : i % 2 === 0 ? run(Items.get("a")) : run(Items.set("b", { n: i }))
          const results = yield* Effect.all(
            Array.from({ length: 20 }, (_, i) => timed(call(i))),
            { concurrency: "unbounded" }
          )
          for (const [exit, elapsed] of results) {
            expect(failureOf(exit)).toBeInstanceOf(CacheBackendUnavailable)
            // it did wait for Redis (a black hole, not a refused connection) and no longer than its timeout
            expect(elapsed).toBeGreaterThanOrEqual(COMMAND_TIMEOUT_MS - 20)
            expect(elapsed).toBeLessThan(COMMAND_TIMEOUT_MS + 100)
          }
          expect(unavailable(results[0]![0], "get").reason).toBe("timeout")

          for (const exit of yield* duringCooldown(run(Items.get("a")))) {
            expect(unavailable(exit, "get").reason).toMatch(/cooldown/)
          }

          // after the cooldown one probe goes to Redis; still paused, it times out and the cooldown starts again
          yield* Effect.sleep(Duration.millis(COOLDOWN_MS + 20))
          const [probe, probeMs] = yield* timed(run(Items.get("a")))
          expect(unavailable(probe, "get").reason).toBe("timeout")
          expect(probeMs).toBeLessThan(COMMAND_TIMEOUT_MS + 100)
          for (const exit of yield* duringCooldown(run(Items.get("a")))) {
            expect(unavailable(exit, "get").reason).toMatch(/cooldown/)
          }

          redis.resume()
          const [value, recoveredMs] = yield* eventually(run(Items.get("a")), 5_000)
          expect(recoveredMs).toBeLessThan(COOLDOWN_MS + SLACK_MS)
          expect(value).toEqual(
            Option.some({ value: { n: 1 }, backend: "redis", degraded: false, near: false, stale: false })
          )
          // one transition down (20 failures and a failed probe), one back
          expect(eventKinds(logs)).toEqual(["BACKEND_UNAVAILABLE_AT_RUNTIME", "BACKEND_RECOVERED"])
          const stats = yield* run(Effect.flatMap(DistributedCache, (c) => c.stats))
          expect(stats).toMatchObject({ mode: "StrictDistributed", backend: "redis", degraded: false, localEntries: 0 })
          expect(stats.failures).toBeGreaterThanOrEqual(22)
        })
      )
  )

  it.scopedLive("does not contact Redis during the cooldown, even once Redis is back", () =>
    withLogs(() =>
      Effect.gen(function* () {
        const cooldown = 1_500
        const redis = yield* redisServer()
        const clientContext = yield* Layer.build(clientLayer(redis.url))
        const client = Context.get(clientContext, RedisClient)
        const cache = yield* Layer.build(
          strictDistributed({ cooldown: Duration.millis(cooldown) }).pipe(
            Layer.provide(Layer.succeedContext(clientContext))
          )
        )
        const run = <A, E>(self: Effect.Effect<A, E, DistributedCache>) => Effect.provide(self, cache)

        yield* kill(redis)
        unavailable(yield* Effect.exit(run(Items.get("a"))), "get")
        const failedAt = performance.now()
        yield* restart(redis)
        yield* eventually(
          Effect.suspend(() => (client.client.status === "ready" ? Effect.void : Effect.fail("not ready"))),
          2_000
        )
        expect(performance.now() - failedAt).toBeLessThan(cooldown - 200)
        for (let i = 0; i < 4; i++) {
          for (const exit of yield* duringCooldown(run(Items.get("a")))) {
            expect(unavailable(exit, "get").reason).toMatch(/cooldown/)
          }
        }
        // the restarted server has not seen a single GET
        expect(yield* Effect.promise(() => redis.command("INFO", "commandstats"))).not.toContain("cmdstat_get:")
        yield* Effect.sleep(Duration.millis(cooldown - (performance.now() - failedAt) + 20))
        expect(yield* run(Items.get("a"))).toEqual(Option.none())
        expect(yield* Effect.promise(() => redis.command("INFO", "commandstats"))).toMatch(/cmdstat_get:calls=1,/)
      })
    )
  )

  it.scopedLive("a command Redis refuses fails closed without starting a cooldown (Redis is up)", () =>
    withLogs((logs) =>
      Effect.gen(function* () {
        const { redis, run } = yield* cacheOnFreshRedis(strictLayer)
        yield* run(Items.set("a", { n: 1 }))
        const [key] = (yield* Effect.promise(() => redis.command("--scan"))).split("\n")
        // the entry's key now holds a list: GET is refused with WRONGTYPE
        yield* Effect.promise(() => redis.command("DEL", key!))
        yield* Effect.promise(() => redis.command("RPUSH", key!, "x"))
        const refused = unavailable(yield* Effect.exit(run(Items.get("a"))), "get")
        expect(refused.reason).toMatch(/WRONGTYPE/)
        // no cooldown: the next call goes to Redis and succeeds
        yield* run(Items.set("b", { n: 2 }))
        expect(yield* run(Items.get("b"))).toEqual(
          Option.some({ value: { n: 2 }, backend: "redis", degraded: false, near: false, stale: false })
        )
        expect(logs).toEqual([])
      })
    )
  )
})
