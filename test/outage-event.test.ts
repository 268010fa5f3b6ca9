/**
 * The runtime outage event, in this library's words: a killed redis-server gives an event whose detail names the
 * outage the way the library does (no ioredis wording), with the driver's own text kept in a Debug log; the
 * ExplicitDegraded event names every operation that goes node-local.
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Layer, Logger, LogLevel, Option } from "effect"
import { explicitDegraded, type SecurityEvent, strictDistributed } from "effect-failclosed"
import * as RateLimiter from "effect-failclosed/RateLimiter"
import * as ReplayGuard from "effect-failclosed/ReplayGuard"
import { clientLayer, COOLDOWN_MS, isSecurityEvent, Items, kill } from "./support/modeTests.js"
import { redisServer } from "./support/RedisServer.js"

interface Entry {
  readonly level: string
  readonly message: unknown
}

/** runs `f` with a Logger that records every entry, Debug included */
const withAllLogs = <A, E, R>(f: (entries: ReadonlyArray<Entry>) => Effect.Effect<A, E, R>) =>
  Effect.suspend(() => {
    const entries: Array<Entry> = []
    const logger = Logger.make(({ logLevel, message }) => {
      entries.push({ level: logLevel.label, message })
    })
    return f(entries).pipe(
      Effect.provide(Logger.replace(Logger.defaultLogger, logger)),
      Logger.withMinimumLogLevel(LogLevel.Debug)
    )
  })

const eventsOf = (entries: ReadonlyArray<Entry>): Array<SecurityEvent> =>
  entries.flatMap((e) => {
    const [first] = e.message as ReadonlyArray<unknown>
    return isSecurityEvent(first) ? [first] : []
  })

const textOf = (entries: ReadonlyArray<Entry>, level: string): Array<string> =>
  entries
    .filter((e) => e.level === level)
    .flatMap((e) => (e.message as ReadonlyArray<unknown>).filter((m): m is string => typeof m === "string"))

/** ioredis' wording, and anything else of the driver's, never in an event */
const DRIVER_WORDS = /stream|writeable|enableOfflineQueue|ECONN|EPIPE|ioredis|127\.0\.0\.1|socket/i

const layers = {
  StrictDistributed: (url: string) =>
    strictDistributed({ cooldown: Duration.millis(COOLDOWN_MS) }).pipe(Layer.provide(clientLayer(url))),
  ExplicitDegraded: (url: string) =>
    explicitDegraded({ cooldown: Duration.millis(COOLDOWN_MS) }).pipe(Layer.provide(clientLayer(url)))
}

describe("the runtime outage event of a killed redis-server", () => {
  for (const mode of ["StrictDistributed", "ExplicitDegraded"] as const) {
    it.scopedLive(`${mode}: the reason is in the library's words; the driver's text is in a Debug log`, () =>
      withAllLogs((entries) =>
        Effect.gen(function* () {
          const redis = yield* redisServer()
          const cache = yield* Layer.build(layers[mode](redis.url))
          const run = <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.provide(self, cache)
          yield* run(Items.set("a", { n: 1 }))
          yield* kill(redis)
          yield* Effect.exit(run(Items.get("a")))
          const events = eventsOf(entries)
          expect(events.map((e) => e.event)).toEqual(["BACKEND_UNAVAILABLE_AT_RUNTIME"])
          const detail = events[0]!.detail
          expect(detail).toMatch(/^Redis is unavailable \((connection lost|connection refused)\); /)
          expect(detail).not.toMatch(DRIVER_WORDS)
          // the cause is kept for debugging: the driver's text, at Debug, once
          const debug = textOf(entries, "DEBUG").filter((t) => t.includes("became unavailable"))
          expect(debug).toHaveLength(1)
          expect(debug[0]).toMatch(/^effect-failclosed: Redis became unavailable: \S/)
          expect(debug[0]).not.toMatch(/\((connection lost|connection refused)\)/)
        })
      )
    )
  }

  it.scopedLive("ExplicitDegraded names every operation it serves node-locally, and each of them is", () =>
    withAllLogs((entries) =>
      Effect.gen(function* () {
        const redis = yield* redisServer()
        const cache = yield* Layer.build(layers.ExplicitDegraded(redis.url))
        const run = <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.provide(self, cache)
        yield* kill(redis)
        const limiter = RateLimiter.make({ name: "l", limit: 1, window: "1 minute", algorithm: "fixed-window" })
        const guard = ReplayGuard.make({ name: "g", window: "1 minute" })
        // each one answers node-locally, marked degraded
        yield* run(Items.set("a", { n: 1 }))
        expect(Option.map(yield* run(Items.get("a")), (c) => c.degraded)).toEqual(Option.some(true))
        yield* run(Items.setMany([["c", { n: 3 }]]))
        expect((yield* run(Items.getMany(["c"]))).map(Option.map((c) => c.degraded))).toEqual([Option.some(true)])
        expect((yield* run(limiter.consume("s"))).degraded).toBe(true)
        expect((yield* run(guard.claim("n"))).degraded).toBe(true)
        const locked = yield* run(Items.getOrCompute("b", Effect.succeed({ n: 2 }), { lock: true }))
        expect(locked.degraded).toBe(true)

        const [event] = eventsOf(entries)
        expect(event!.event).toBe("BACKEND_UNAVAILABLE_AT_RUNTIME")
        expect(event!.detail).toBe(
          "Redis is unavailable (" +
            /\((connection lost|connection refused)\)/.exec(event!.detail)![1] +
            "); get, set, getMany, setMany, rate-limit decisions, replay claims, getOrCompute locks are served" +
            " node-locally and marked" +
            " degraded until it answers; invalidate, clear and count fail with CacheBackendUnavailable"
        )
      })
    )
  )
})
