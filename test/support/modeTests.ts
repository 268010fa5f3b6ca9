/**
 * What the StrictDistributed and ExplicitDegraded tests share: short timeouts, a client layer,
 * a keyspace, a Logger that records security events, and exit/timing helpers.
 */
import { expect } from "@effect/vitest"
import { Cause, Duration, Effect, Exit, Layer, Logger, Option, Schema } from "effect"
import {
  CacheBackendUnavailable,
  type CacheModeName,
  type DistributedCache,
  Keyspace,
  RedisClient,
  SecurityEvent
} from "effect-failclosed"
import { type RedisServer, redisServer } from "./RedisServer.js"

export const COMMAND_TIMEOUT_MS = 200
export const COOLDOWN_MS = 300
export const RECONNECT_MS = 100
export const STARTUP_TIMEOUT_MS = 400
/** scheduling slack on a shared 2-core machine, on top of the durations the bounds are made of */
export const SLACK_MS = 300

export const clientLayer = (url: string) =>
  RedisClient.layer({
    url,
    commandTimeout: Duration.millis(COMMAND_TIMEOUT_MS),
    connectTimeout: Duration.millis(300),
    maxReconnectDelay: Duration.millis(RECONNECT_MS),
    startupTimeout: Duration.millis(STARTUP_TIMEOUT_MS)
  })

export const Items = Keyspace.make({
  name: "items",
  key: Schema.String,
  value: Schema.Struct({ n: Schema.Number }),
  timeToLive: "1 minute"
})

export interface LogEntry {
  readonly level: string
  readonly message: unknown
}

/** runs `f` with a Logger that records every entry (and prints nothing) */
export const withLogs = <A, E, R>(f: (entries: ReadonlyArray<LogEntry>) => Effect.Effect<A, E, R>) =>
  Effect.suspend(() => {
    const entries: Array<LogEntry> = []
    const logger = Logger.make(({ logLevel, message }) => {
      entries.push({ level: logLevel.label, message })
    })
    return f(entries).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
  })

export const isSecurityEvent = Schema.is(SecurityEvent)

/** the kinds of the security events logged by a cache of `mode`; fails the test on any other kind of entry */
export const eventKindsOf =
  (mode: CacheModeName) =>
  (entries: ReadonlyArray<LogEntry>): Array<string> =>
    entries.map((entry) => {
      expect(entry.level).toBe("WARN")
      expect(Array.isArray(entry.message)).toBe(true)
      const message = entry.message as ReadonlyArray<unknown>
      expect(message).toHaveLength(1)
      const event = message[0]
      expect(isSecurityEvent(event), JSON.stringify(event)).toBe(true)
      const e = event as SecurityEvent
      expect(e.mode).toBe(mode)
      expect(e.backend).toBe("redis")
      expect(e.tenant).toBe(null)
      expect(new Date(e.timestamp).toISOString()).toBe(e.timestamp)
      return e.event
    })

/** the exit of `self` and how long it took, measured around this single call */
export const timed = <A, E, R>(self: Effect.Effect<A, E, R>) =>
  Effect.suspend(() => {
    const start = performance.now()
    return Effect.map(Effect.exit(self), (exit) => [exit, performance.now() - start] as const)
  })

/**
 * Calls `self` 5 times, timing each single call. The cooldown promise is "within 5 ms": the median call must take
 * less; every call must stay far below commandTimeout (a call that waited for Redis takes at least that long). The
 * median, not the maximum, so one call preempted on a loaded 2-core machine does not fail the test.
 */
export const duringCooldown = <A, E, R>(self: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const samples: Array<readonly [Exit.Exit<A, E>, number]> = []
    for (let i = 0; i < 5; i++) samples.push(yield* timed(self))
    const millis = samples.map(([, ms]) => ms).sort((a, b) => a - b)
    expect(millis[2], `call durations ${millis.join(", ")}`).toBeLessThan(5)
    expect(millis[4], `call durations ${millis.join(", ")}`).toBeLessThan(COMMAND_TIMEOUT_MS / 2)
    return samples.map(([exit]) => exit)
  })

export const failureOf = <A, E>(exit: Exit.Exit<A, E>): E => {
  if (Exit.isSuccess(exit)) throw new Error(`expected a failure, got ${JSON.stringify(exit.value)}`)
  const failure = Cause.failureOption(exit.cause)
  if (Option.isNone(failure)) throw new Error(`expected a typed failure, got ${Cause.pretty(exit.cause)}`)
  return failure.value
}

/** the CacheBackendUnavailable of a cache of `mode` that `exit` failed with */
export const unavailableIn =
  (mode: CacheModeName) =>
  <A, E>(exit: Exit.Exit<A, E>, operation: string): CacheBackendUnavailable => {
    const error = failureOf(exit)
    expect(error).toBeInstanceOf(CacheBackendUnavailable)
    const e = error as CacheBackendUnavailable
    expect(e._tag).toBe("CacheBackendUnavailable")
    expect(e.mode).toBe(mode)
    expect(e.operation).toBe(operation)
    return e
  }

export const kill = (redis: RedisServer) => Effect.promise(() => redis.kill())
export const restart = (redis: RedisServer) => Effect.promise(() => redis.restart())

/** runs an effect with one cache provided */
export type Run = <A, E>(self: Effect.Effect<A, E, DistributedCache>) => Effect.Effect<A, E>

/** a fresh redis-server (stopped with the scope) and a cache of the mode `layer` over it */
export const cacheOnFreshRedis = <E>(layer: (url: string) => Layer.Layer<DistributedCache, E>) =>
  Effect.gen(function* () {
    const redis = yield* redisServer()
    const cache = yield* Layer.build(layer(redis.url))
    const run: Run = (self) => Effect.provide(self, cache)
    return { redis, run }
  })
