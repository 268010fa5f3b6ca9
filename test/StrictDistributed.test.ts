import { describe, expect, it } from "@effect/vitest"
import { Cause, Context, Duration, Effect, Exit, Layer, Logger, Option, Schema } from "effect"
import {
  CacheBackendUnavailable,
  DistributedCache,
  Keyspace,
  RedisClient,
  SecurityEvent,
  strictDistributed
} from "effect-failclosed"
import { type RedisServer, redisServer } from "./support/RedisServer.js"

const COMMAND_TIMEOUT_MS = 200
const COOLDOWN_MS = 300
const RECONNECT_MS = 100
const STARTUP_TIMEOUT_MS = 400
/** scheduling slack on a shared 2-core machine, on top of the durations the bounds are made of */
const SLACK_MS = 300

const clientLayer = (url: string) =>
  RedisClient.layer({
    url,
    commandTimeout: Duration.millis(COMMAND_TIMEOUT_MS),
    connectTimeout: Duration.millis(300),
    maxReconnectDelay: Duration.millis(RECONNECT_MS),
    startupTimeout: Duration.millis(STARTUP_TIMEOUT_MS)
  })

const strictLayer = (url: string, cooldownMillis = COOLDOWN_MS) =>
  strictDistributed({ cooldown: Duration.millis(cooldownMillis) }).pipe(Layer.provide(clientLayer(url)))

const Items = Keyspace.make({
  name: "items",
  key: Schema.String,
  value: Schema.Struct({ n: Schema.Number }),
  timeToLive: "1 minute"
})

// --- helpers ---------------------------------------------------------------------------------------------------------

interface LogEntry {
  readonly level: string
  readonly message: unknown
}

/** runs `f` with a Logger that records every entry (and prints nothing) */
const withLogs = <A, E, R>(f: (entries: ReadonlyArray<LogEntry>) => Effect.Effect<A, E, R>) =>
  Effect.suspend(() => {
    const entries: Array<LogEntry> = []
    const logger = Logger.make(({ logLevel, message }) => {
      entries.push({ level: logLevel.label, message })
    })
    return f(entries).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
  })

const isSecurityEvent = Schema.is(SecurityEvent)

/** the kinds of the security events logged; fails the test on any other kind of entry */
const eventKinds = (entries: ReadonlyArray<LogEntry>): Array<string> =>
  entries.map((entry) => {
    expect(entry.level).toBe("WARN")
    expect(Array.isArray(entry.message)).toBe(true)
    const message = entry.message as ReadonlyArray<unknown>
    expect(message).toHaveLength(1)
    const event = message[0]
    expect(isSecurityEvent(event), JSON.stringify(event)).toBe(true)
    const e = event as SecurityEvent
    expect(e.mode).toBe("StrictDistributed")
    expect(e.backend).toBe("redis")
    expect(e.tenant).toBe(null)
    expect(new Date(e.timestamp).toISOString()).toBe(e.timestamp)
    return e.event
  })

/** the exit of `self` and how long it took, measured around this single call */
const timed = <A, E, R>(self: Effect.Effect<A, E, R>) =>
  Effect.suspend(() => {
    const start = performance.now()
    return Effect.map(Effect.exit(self), (exit) => [exit, performance.now() - start] as const)
  })

/**
 * Calls `self` 5 times, timing each single call. The cooldown promise is "within 5 ms": the median call must take
 * less; every call must stay far below commandTimeout (a call that waited for Redis takes at least that long). The
 * median, not the maximum, so one call preempted on a loaded 2-core machine does not fail the test.
 */
const duringCooldown = <A, E, R>(self: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const samples: Array<readonly [Exit.Exit<A, E>, number]> = []
    for (let i = 0; i < 5; i++) samples.push(yield* timed(self))
    const millis = samples.map(([, ms]) => ms).sort((a, b) => a - b)
    expect(millis[2], `call durations ${millis.join(", ")}`).toBeLessThan(5)
    expect(millis[4], `call durations ${millis.join(", ")}`).toBeLessThan(COMMAND_TIMEOUT_MS / 2)
    return samples.map(([exit]) => exit)
  })

const failureOf = <A, E>(exit: Exit.Exit<A, E>): E => {
  if (Exit.isSuccess(exit)) throw new Error(`expected a failure, got ${JSON.stringify(exit.value)}`)
  const failure = Cause.failureOption(exit.cause)
  if (Option.isNone(failure)) throw new Error(`expected a typed failure, got ${Cause.pretty(exit.cause)}`)
  return failure.value
}

const unavailable = <A, E>(exit: Exit.Exit<A, E>, operation: string): CacheBackendUnavailable => {
  const error = failureOf(exit)
  expect(error).toBeInstanceOf(CacheBackendUnavailable)
  const e = error as CacheBackendUnavailable
  expect(e._tag).toBe("CacheBackendUnavailable")
  expect(e.mode).toBe("StrictDistributed")
  expect(e.operation).toBe(operation)
  return e
}

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

const kill = (redis: RedisServer) => Effect.promise(() => redis.kill())
const restart = (redis: RedisServer) => Effect.promise(() => redis.restart())

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
          const redis = yield* redisServer()
          const cache = yield* Layer.build(strictLayer(redis.url))
          const run = <A, E>(self: Effect.Effect<A, E, DistributedCache>) => Effect.provide(self, cache)

          yield* run(Items.set("a", { n: 1 }))
          expect(yield* run(Items.get("a"))).toEqual(
            Option.some({ value: { n: 1 }, backend: "redis", degraded: false })
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
            Option.some({ value: { n: 4 }, backend: "redis", degraded: false })
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
          const redis = yield* redisServer()
          const cache = yield* Layer.build(strictLayer(redis.url))
          const run = <A, E>(self: Effect.Effect<A, E, DistributedCache>) => Effect.provide(self, cache)
          yield* run(Items.set("a", { n: 1 }))

          redis.pause()
          const call = (i: number): Effect.Effect<unknown, unknown> =>
            i % 2 === 0 ? run(Items.get("a")) : run(Items.set("b", { n: i }))
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
          expect(value).toEqual(Option.some({ value: { n: 1 }, backend: "redis", degraded: false }))
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
        const redis = yield* redisServer()
        const cache = yield* Layer.build(strictLayer(redis.url))
        const run = <A, E>(self: Effect.Effect<A, E, DistributedCache>) => Effect.provide(self, cache)
        yield* run(Items.set("a", { n: 1 }))
        const [key] = (yield* Effect.promise(() => redis.command("--scan"))).split("\n")
        // the entry's key now holds a list: GET is refused with WRONGTYPE
        yield* Effect.promise(() => redis.command("DEL", key!))
        yield* Effect.promise(() => redis.command("RPUSH", key!, "x"))
        const refused = unavailable(yield* Effect.exit(run(Items.get("a"))), "get")
        expect(refused.reason).toMatch(/WRONGTYPE/)
        // no cooldown: the next call goes to Redis and succeeds
        yield* run(Items.set("b", { n: 2 }))
        expect(yield* run(Items.get("b"))).toEqual(Option.some({ value: { n: 2 }, backend: "redis", degraded: false }))
        expect(logs).toEqual([])
      })
    )
  )
})
