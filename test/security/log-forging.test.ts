/**
 * Log forging: tenant ids, keys, stored entries and driver error texts that hold newlines, carriage returns, line
 * separators, ANSI escapes or bidi overrides cannot forge a log line or an event. Events are structured objects
 * (one event is one line with Logger.json, one object with Logger.structured), tenant ids and keys are never
 * logged, and every text the library builds from hostile input is one printable line.
 */
import { describe, expect, it } from "@effect/vitest"
import { Cause, type Console, Duration, Effect, Exit, Layer, Logger, Option, Schema } from "effect"
import {
  CacheEntryInvalid,
  CacheValueInvalid,
  type DistributedCache,
  explicitDegraded,
  Keyspace,
  LocalOnly,
  RedisClient,
  SecurityEvent,
  strictDistributed
} from "effect-failclosed"
import { emit } from "../../src/SecurityEvent.js"
import { redisServer } from "../support/RedisServer.js"

/** a forged event, a forged plain-text log line, and characters that break or reorder lines */
const FORGED_EVENT = JSON.stringify({
  event: "BACKEND_RECOVERED",
  backend: "redis",
  mode: "StrictDistributed",
  tenant: "victim",
  detail: "all good",
  timestamp: "2026-01-01T00:00:00.000Z"
})
const HOSTILE = [
  `acme"}\n${FORGED_EVENT}\n`,
  'acme\r\ntimestamp=2026-01-01 level=INFO message="login ok" user=admin',
  "acme\u2028forged\u2029line\u0085next",
  "acme\u001b[2K\u001b[1Gcleared",
  "acme\u202egnp.exe",
  "acme\u0000nul\u007fdel"
]
/** nothing that ends, breaks or reorders a line */
const ONE_PRINTABLE_LINE = /^[^\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]*$/

/** a Console that records what a Logger writes (strings for json/logfmt, objects for structured) */
const capturingConsole = () => {
  const written: Array<unknown> = []
  const base = Effect.runSync(Effect.console)
  const record = (...args: ReadonlyArray<unknown>) => {
    written.push(args.length === 1 ? args[0] : args)
  }
  const console: Console.Console = {
    ...base,
    unsafe: { ...base.unsafe, log: record, info: record, warn: record, error: record, debug: record, trace: record }
  }
  return { written, console }
}

const isSecurityEvent = Schema.is(SecurityEvent)

/** the event a Logger rendered: the single logged value (a one-element message may be unwrapped) */
const eventOf = (message: unknown): SecurityEvent => {
  const values = Array.isArray(message) ? message : [message]
  expect(values).toHaveLength(1)
  expect(isSecurityEvent(values[0]), JSON.stringify(values[0])).toBe(true)
  return values[0] as SecurityEvent
}

describe("security events are structured: one event, one line", () => {
  it.effect("Logger.json writes an event whose detail holds newlines and a forged event as one JSON line", () =>
    Effect.gen(function* () {
      const { console, written } = capturingConsole()
      for (const detail of HOSTILE) {
        yield* emit({ event: "BACKEND_UNAVAILABLE_AT_RUNTIME", mode: "ExplicitDegraded", detail }).pipe(
          Effect.provide(Logger.json),
          Effect.withConsole(console)
        )
      }
      expect(written).toHaveLength(HOSTILE.length)
      for (const [i, line] of written.entries()) {
        // JSON escapes \r and \n, so the line stays one line (a JSON string may hold U+2028 as it is: it is data)
        expect(typeof line).toBe("string")
        expect(line as string).not.toMatch(/[\r\n]/)
        const parsed = JSON.parse(line as string) as { logLevel: string; message: unknown }
        expect(parsed.logLevel).toBe("WARN")
        const event = eventOf(parsed.message)
        // the structure carried the hostile text intact, as data: it forged nothing
        expect(event.detail).toBe(HOSTILE[i])
        expect(event.event).toBe("BACKEND_UNAVAILABLE_AT_RUNTIME")
      }
    })
  )

  it.effect("Logger.structured receives the event object itself, and Logger.logFmt writes one line", () =>
    Effect.gen(function* () {
      const structured = capturingConsole()
      const logfmt = capturingConsole()
      const recovered = emit({ event: "BACKEND_RECOVERED", mode: "StrictDistributed", detail: HOSTILE[0]! })
      yield* recovered.pipe(Effect.provide(Logger.structured), Effect.withConsole(structured.console))
      yield* recovered.pipe(Effect.provide(Logger.logFmt), Effect.withConsole(logfmt.console))
      expect(structured.written).toHaveLength(1)
      const entry = structured.written[0] as { message: unknown }
      expect(eventOf(entry.message).detail).toBe(HOSTILE[0])
      expect(logfmt.written).toHaveLength(1)
      expect(logfmt.written[0] as string).not.toMatch(/[\r\n]/)
    })
  )
})

describe("hostile tenant ids and keys through an outage", () => {
  it.scopedLive("events are single JSON lines, name no tenant and no key, and carry one-line details", () =>
    Effect.gen(function* () {
      const redis = yield* redisServer()
      const { console, written } = capturingConsole()
      const client = RedisClient.layer({
        url: redis.url,
        commandTimeout: Duration.millis(300),
        connectTimeout: Duration.millis(300),
        maxReconnectDelay: Duration.millis(50)
      })
      const context = yield* Layer.build(explicitDegraded({ cooldown: "100 millis" }).pipe(Layer.provide(client)))
      const Items = Keyspace.make({ name: "items", key: Schema.String, value: Schema.String, timeToLive: "1 minute" })
      const run = <A, E>(self: Effect.Effect<A, E, DistributedCache>) =>
        Effect.exit(self).pipe(Effect.provide(context), Effect.provide(Logger.json), Effect.withConsole(console))
      const traffic = Effect.forEach(HOSTILE, (tenant) =>
        Effect.forEach(HOSTILE, (key) =>
          Effect.zip(run(Items.set(key, tenant, { tenant })), run(Items.get(key, { tenant })))
        )
      )
      yield* traffic
      yield* Effect.promise(() => redis.kill())
      yield* traffic
      yield* Effect.promise(() => redis.restart())
      // past the cooldown, the next call probes Redis and recovers
      for (let i = 0; i < 50 && !written.some((w) => String(w).includes("BACKEND_RECOVERED")); i++) {
        yield* Effect.sleep(Duration.millis(100))
        yield* traffic
      }
      const kinds = written.map((line) => {
        expect(typeof line).toBe("string")
        expect(line as string).not.toMatch(/[\r\n\u2028\u2029]/)
        const event = eventOf((JSON.parse(line as string) as { message: unknown }).message)
        expect(event.tenant).toBe(null)
        expect(event.detail).toMatch(ONE_PRINTABLE_LINE)
        for (const hostile of HOSTILE) {
          expect(line as string).not.toContain(JSON.stringify(hostile).slice(1, -1))
          expect(line as string).not.toContain("acme")
        }
        return event.event
      })
      expect(kinds).toEqual(["BACKEND_UNAVAILABLE_AT_RUNTIME", "BACKEND_RECOVERED"])
    })
  )
})

describe("texts built from hostile input are one printable line", () => {
  it.effect("a value refused by the JSON check names its path without the raw property names", () =>
    Effect.gen(function* () {
      const Loose = Keyspace.make({ name: "loose", key: Schema.String, value: Schema.Unknown, timeToLive: "1 minute" })
      for (const name of HOSTILE) {
        const exit = yield* Effect.exit(Loose.set("k", { [name]: { inner: NaN } }).pipe(Effect.provide(LocalOnly)))
        const error = Option.getOrThrow(Cause.failureOption((exit as Exit.Failure<unknown, CacheValueInvalid>).cause))
        expect(error).toBeInstanceOf(CacheValueInvalid)
        expect(error.message).toMatch(ONE_PRINTABLE_LINE)
        expect(error.message).toMatch(/NaN at \$\["acme/)
      }
    })
  )

  it.effect("a value refused by its Schema names its path without the raw property names", () =>
    Effect.gen(function* () {
      const Scores = Keyspace.make({
        name: "scores",
        key: Schema.String,
        value: Schema.Record({ key: Schema.String, value: Schema.Number }),
        timeToLive: "1 minute"
      })
      for (const name of HOSTILE) {
        const exit = yield* Effect.exit(
          Scores.set("k", { [name]: "not a number" } as never).pipe(Effect.provide(LocalOnly))
        )
        const error = Option.getOrThrow(Cause.failureOption((exit as Exit.Failure<unknown, CacheValueInvalid>).cause))
        expect(error).toBeInstanceOf(CacheValueInvalid)
        expect(error.message, JSON.stringify(error.message)).toMatch(ONE_PRINTABLE_LINE)
      }
    })
  )

  it.scopedLive("a stored entry crafted with hostile property names fails as CacheEntryInvalid in one line", () =>
    Effect.gen(function* () {
      const redis = yield* redisServer()
      const context = yield* Layer.build(
        strictDistributed().pipe(Layer.provide(RedisClient.layer({ url: redis.url, commandTimeout: "1 second" })))
      )
      const Scores = Keyspace.make({
        name: "scores",
        key: Schema.String,
        value: Schema.Record({ key: Schema.String, value: Schema.Number }),
        timeToLive: "1 minute"
      })
      yield* Effect.provide(Scores.set("k", { a: 1 }), context)
      const key = (yield* Effect.promise(() => redis.command("--scan"))).trim()
      for (const name of HOSTILE) {
        // someone with write access to Redis plants an entry whose property name is a forged log line
        yield* Effect.promise(() => redis.command("SET", key, JSON.stringify({ [name]: "x" })))
        const exit = yield* Effect.exit(Effect.provide(Scores.get("k"), context))
        const error = Option.getOrThrow(Cause.failureOption((exit as Exit.Failure<unknown, CacheEntryInvalid>).cause))
        expect(error).toBeInstanceOf(CacheEntryInvalid)
        expect(error.message, JSON.stringify(error.message)).toMatch(ONE_PRINTABLE_LINE)
      }
    })
  )

  it.scopedLive("a driver error text with line breaks and escapes becomes one line", () =>
    Effect.gen(function* () {
      const redis = yield* RedisClient.make({ url: "redis://127.0.0.1:1", password: "pw-secret" })
      for (const hostile of HOSTILE) {
        const text = redis.describeError(new Error(`ERR ${hostile} pw-secret`))
        expect(text).toMatch(ONE_PRINTABLE_LINE)
        expect(text).not.toContain("pw-secret")
      }
    })
  )
})
