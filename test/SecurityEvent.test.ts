import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Logger, LogLevel, Schema, TestClock } from "effect"
import { SecurityEvent } from "effect-failclosed"
import * as SecurityEvents from "../src/SecurityEvent.js"

interface LogEntry {
  readonly level: LogLevel.LogLevel
  readonly message: unknown
}

const capture = () => {
  const entries: Array<LogEntry> = []
  const logger = Logger.make(({ logLevel, message }) => {
    entries.push({ level: logLevel, message })
  })
  return { entries, layer: Logger.replace(Logger.defaultLogger, logger) }
}

const decode = Schema.decodeUnknownEither(SecurityEvent)

describe("SecurityEvent", () => {
  it.effect("emit logs exactly one entry at Warning whose single message is the event object itself", () =>
    Effect.gen(function* () {
      const { entries, layer } = capture()
      yield* TestClock.setTime(Date.UTC(2030, 0, 2, 3, 4, 5, 6))
      yield* SecurityEvents.emit({
        event: "BACKEND_UNAVAILABLE_AT_RUNTIME",
        mode: "ExplicitDegraded",
        detail: "timeout"
      }).pipe(Effect.provide(layer))
      expect(entries).toHaveLength(1)
      const [entry] = entries
      expect(entry!.level).toBe(LogLevel.Warning)
      expect(Array.isArray(entry!.message)).toBe(true)
      const message = entry!.message as ReadonlyArray<unknown>
      expect(message).toHaveLength(1)
      expect(typeof message[0]).toBe("object")
      expect(message[0]).toEqual({
        event: "BACKEND_UNAVAILABLE_AT_RUNTIME",
        backend: "redis",
        mode: "ExplicitDegraded",
        tenant: null,
        detail: "timeout",
        timestamp: "2030-01-02T03:04:05.006Z"
      })
      expect(Either.isRight(decode(message[0]))).toBe(true)
    })
  )

  it.effect("a JSON logger receives the event's structure, not a string", () =>
    Effect.gen(function* () {
      const lines: Array<unknown> = []
      const json = Logger.map(Logger.structuredLogger, (entry) => {
        lines.push(entry)
      })
      yield* SecurityEvents.emit({
        event: "BACKEND_RECOVERED",
        mode: "StrictDistributed",
        detail: "probe answered"
      }).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, json)))
      expect(lines).toHaveLength(1)
      const line = lines[0] as { message: unknown; logLevel: string }
      expect(line.logLevel).toBe("WARN")
      expect(line.message).toMatchObject({ event: "BACKEND_RECOVERED", mode: "StrictDistributed", tenant: null })
    })
  )

  it.effect("make stamps the time of Effect's Clock and keeps a given tenant", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(0)
      const event = yield* SecurityEvents.make({
        event: "BACKEND_UNAVAILABLE_AT_STARTUP",
        mode: "StrictDistributed",
        detail: "down",
        tenant: "acme"
      })
      expect(event.timestamp).toBe("1970-01-01T00:00:00.000Z")
      expect(event.tenant).toBe("acme")
      expect(event.backend).toBe("redis")
    })
  )

  it("the Schema accepts exactly the documented shape", () => {
    const valid = {
      event: "BACKEND_RECOVERED",
      backend: "redis",
      mode: "ExplicitDegraded",
      tenant: null,
      detail: "x",
      timestamp: "2030-01-01T00:00:00.000Z"
    }
    expect(decode(valid)).toEqual(Either.right(valid))
    expect(Either.isRight(decode({ ...valid, tenant: "t" }))).toBe(true)
    const invalid: ReadonlyArray<Record<string, unknown>> = [
      { ...valid, event: "BACKEND_DOWN" },
      { ...valid, backend: "memcached" },
      { ...valid, mode: "Degraded" },
      { ...valid, tenant: undefined },
      { ...valid, tenant: 1 },
      { ...valid, detail: undefined },
      { ...valid, timestamp: "yesterday" },
      { ...valid, timestamp: 0 }
    ]
    for (const event of invalid) expect(Either.isLeft(decode(event)), JSON.stringify(event)).toBe(true)
  })
})
