/**
 * A Redis that answers, but not as expected: a key holding another type (WRONGTYPE), out of memory with
 * `noeviction` (writes refused), an ACL user that lacks a command (NOPERM), a FLUSHALL in the middle of traffic.
 * Each gives a typed error (the strict mode, and the degraded mode too, fail closed: Redis answered, so there is no
 * outage to degrade for) or the documented outcome. Never a defect, never another entry's data, never a decision
 * taken node-locally.
 */
import { describe, expect, it } from "@effect/vitest"
import { Cause, Duration, Effect, Exit, Fiber, Layer, Logger, Option, Schema } from "effect"
import {
  CacheBackendUnavailable,
  DistributedCache,
  explicitDegraded,
  Keyspace,
  RateLimiter,
  RedisClient,
  type RedisClientOptions,
  ReplayGuard,
  strictDistributed
} from "effect-failclosed"
import { type RedisServer, redisServer } from "../support/RedisServer.js"

const clientLayer = (url: string, extra: RedisClientOptions = {}) =>
  RedisClient.layer({
    url,
    commandTimeout: Duration.millis(1_000),
    connectTimeout: Duration.millis(500),
    startupTimeout: Duration.seconds(2),
    ...extra
  })

type Mode = "StrictDistributed" | "ExplicitDegraded"
const MODES: ReadonlyArray<Mode> = ["StrictDistributed", "ExplicitDegraded"]

const modeLayer = (mode: Mode, client: Layer.Layer<RedisClient>) =>
  (mode === "StrictDistributed"
    ? strictDistributed({ cooldown: "1 minute" })
    : explicitDegraded({ cooldown: "1 minute" })
  ).pipe(Layer.provide(client))

interface Harness {
  readonly run: <A, E>(self: Effect.Effect<A, E, DistributedCache>) => Effect.Effect<Exit.Exit<A, E>>
  /** every entry logged so far (a security event would show up here) */
  readonly logs: Array<unknown>
}

/** builds the mode in the current scope, with a Logger that records every entry */
const harness = (layer: Layer.Layer<DistributedCache, unknown>) =>
  Effect.gen(function* () {
    const logs: Array<unknown> = []
    const logger = Logger.make(({ message }) => {
      logs.push(message)
    })
    const loggerLayer = Logger.replace(Logger.defaultLogger, logger)
    const context = yield* Layer.build(Layer.provide(layer, loggerLayer))
    const withLogger = Layer.succeedContext(context).pipe(Layer.provideMerge(loggerLayer))
    const run: Harness["run"] = (self) => Effect.exit(Effect.provide(self, withLogger))
    return { run, logs } satisfies Harness
  })

const failureOf = <A, E>(exit: Exit.Exit<A, E>): E => {
  if (Exit.isSuccess(exit)) throw new Error(`expected a failure, got a success: ${JSON.stringify(exit.value)}`)
  const failure = Cause.failureOption(exit.cause)
  if (Option.isNone(failure)) throw new Error(`expected a typed failure, got ${Cause.pretty(exit.cause)}`)
  return failure.value
}

const expectRefused = <A, E>(exit: Exit.Exit<A, E>, reply: RegExp, what: string) => {
  const error = failureOf(exit)
  expect(error, what).toBeInstanceOf(CacheBackendUnavailable)
  expect((error as CacheBackendUnavailable).reason, what).toMatch(/^Redis refused the command: /)
  expect((error as CacheBackendUnavailable).reason, what).toMatch(reply)
}

const cli = (redis: RedisServer, ...args: Array<string>) => Effect.promise(() => redis.command(...args))
const keysMatching = (redis: RedisServer, pattern: string) =>
  Effect.map(cli(redis, "--scan", "--pattern", pattern), (out) => out.split("\n").filter((k) => k !== ""))

const stats = (h: Harness) =>
  Effect.map(
    h.run(Effect.flatMap(DistributedCache, (c) => c.stats)),
    Exit.getOrElse(() => undefined)
  )

const Items = Keyspace.make({
  name: "items",
  key: Schema.String,
  value: Schema.Struct({ n: Schema.Number }),
  timeToLive: "1 minute"
})
const Blobs = Keyspace.make({ name: "blobs", key: Schema.Number, value: Schema.String, timeToLive: "1 minute" })
const Guard = ReplayGuard.make({ name: "nonces", window: "1 minute" })
const Limit = RateLimiter.make({ name: "api", limit: 3, window: "1 minute", algorithm: "fixed-window" })

describe("WRONGTYPE: a key that holds another type", () => {
  for (const mode of MODES) {
    it.scopedLive(`${mode}: a read fails closed (never a miss, never the other value) and a write replaces it`, () =>
      Effect.gen(function* () {
        const redis = yield* redisServer()
        const h = yield* harness(modeLayer(mode, clientLayer(redis.url)))
        expect(yield* h.run(Items.set("k", { n: 1 }))).toEqual(Exit.void)
        expect(yield* h.run(Items.set("other", { n: 2 }))).toEqual(Exit.void)
        // the key of "k": the one whose value is {"n":1}
        const keys = yield* keysMatching(redis, "fc:*")
        const values = yield* Effect.forEach(keys, (k) => cli(redis, "GET", k))
        const target = keys[values.indexOf('{"n":1}')]!
        expect(keys).toHaveLength(2)
        yield* cli(redis, "DEL", target)
        yield* cli(redis, "RPUSH", target, '{"n":666}')

        expectRefused(yield* h.run(Items.get("k")), /WRONGTYPE/, "get")
        let computed = 0
        const compute = Effect.sync(() => ({ n: ++computed }))
        expectRefused(yield* h.run(Items.getOrCompute("k", compute)), /WRONGTYPE/, "getOrCompute")
        expect(computed).toBe(0)
        // Redis answered: no cooldown, no event, no fallback; the next call goes to Redis at once
        expect(yield* h.run(Items.get("other"))).toEqual(
          Exit.succeed(Option.some({ value: { n: 2 }, backend: "redis", degraded: false, near: false, stale: false }))
        )
        expect(h.logs).toEqual([])
        expect(yield* stats(h)).toMatchObject({ backend: "redis", degraded: false, localEntries: 0 })
        // documented: SET replaces a key of any type, so a write repairs the entry
        expect(yield* h.run(Items.set("k", { n: 3 }))).toEqual(Exit.void)
        expect(yield* h.run(Items.get("k"))).toEqual(
          Exit.succeed(Option.some({ value: { n: 3 }, backend: "redis", degraded: false, near: false, stale: false }))
        )
      })
    )
  }

  it.scopedLive("a replay nonce whose key holds another type is refused as a replay, never claimed", () =>
    Effect.gen(function* () {
      const redis = yield* redisServer()
      const h = yield* harness(modeLayer("StrictDistributed", clientLayer(redis.url)))
      expect(Exit.isSuccess(yield* h.run(Guard.claim("n1")))).toBe(true)
      const [key] = yield* keysMatching(redis, "fc:{g:*")
      yield* cli(redis, "DEL", key!)
      yield* cli(redis, "HSET", key!, "x", "1")
      expect(failureOf(yield* h.run(Guard.claim("n1")))._tag).toBe("ReplayDetected")
    })
  )

  for (const mode of MODES) {
    it.scopedLive(`${mode}: a rate limit whose state holds another type fails closed, never allows`, () =>
      Effect.gen(function* () {
        const redis = yield* redisServer()
        const h = yield* harness(modeLayer(mode, clientLayer(redis.url)))
        expect(Exit.isSuccess(yield* h.run(Limit.consume("alice")))).toBe(true)
        const keys = yield* keysMatching(redis, "fc:{r*")
        expect(keys.length).toBeGreaterThan(0)
        for (const key of keys) {
          yield* cli(redis, "DEL", key)
          yield* cli(redis, "RPUSH", key, "0")
        }
        expectRefused(yield* h.run(Limit.consume("alice")), /WRONGTYPE/, "consume")
        expectRefused(yield* h.run(Limit.enforce("alice")), /WRONGTYPE/, "enforce")
        expect(h.logs).toEqual([])
        expect(yield* stats(h)).toMatchObject({ degraded: false, localEntries: 0 })
      })
    )
  }
})

describe("out of memory with noeviction", () => {
  for (const mode of MODES) {
    it.scopedLive(`${mode}: writes fail closed with the OOM reply; reads and deletions keep working`, () =>
      Effect.gen(function* () {
        const redis = yield* redisServer({ args: ["--maxmemory", "1mb", "--maxmemory-policy", "noeviction"] })
        const h = yield* harness(modeLayer(mode, clientLayer(redis.url)))
        expect(yield* h.run(Items.set("keep", { n: 42 }))).toEqual(Exit.void)
        // fill until Redis refuses (it holds ~0.9 MB when empty: a few dozen 16 KiB values are enough)
        let filled = 0
        let refused: Exit.Exit<void, unknown> | undefined
        while (refused === undefined && filled < 1_000) {
          const exit = yield* h.run(Blobs.set(filled, "x".repeat(16 * 1024)))
          if (Exit.isFailure(exit)) refused = exit
          else filled++
        }
        expect(refused).toBeDefined()
        expectRefused(refused!, /^Redis refused the command: OOM /, "set")
        // near the limit, freed query buffers let a small write through now and then: hold Redis firmly over it
        yield* cli(redis, "CONFIG", "SET", "maxmemory", "1")
        expectRefused(yield* h.run(Items.set("new", { n: 1 })), /OOM/, "set of a small value")
        // the rate limiter and the replay guard fail closed: neither a local decision nor a fake replay
        expectRefused(yield* h.run(Limit.consume("alice")), /OOM/, "consume")
        expectRefused(yield* h.run(Guard.claim("nonce-1")), /OOM/, "claim")
        expectRefused(
          yield* h.run(Items.getOrCompute("fresh", Effect.succeed({ n: 7 }))),
          /OOM/,
          "getOrCompute of a miss"
        )
        // reads still answer from Redis, with the right data
        expect(yield* h.run(Items.get("keep"))).toEqual(
          Exit.succeed(Option.some({ value: { n: 42 }, backend: "redis", degraded: false, near: false, stale: false }))
        )
        expect(yield* h.run(Items.get("new"))).toEqual(Exit.succeed(Option.none()))
        expect(h.logs).toEqual([])
        expect(yield* stats(h)).toMatchObject({ backend: "redis", degraded: false, localEntries: 0 })
        // deletions are allowed under OOM; once Redis has memory to spare, writes are accepted again (no cooldown
        // to wait for: the refusals never counted as an outage)
        expect(yield* h.run(Blobs.clear())).toEqual(Exit.succeed(filled))
        yield* cli(redis, "CONFIG", "SET", "maxmemory", "4mb")
        expect(yield* h.run(Items.set("new", { n: 1 }))).toEqual(Exit.void)
        expect(Exit.isSuccess(yield* h.run(Guard.claim("nonce-1")))).toBe(true)
        expect(failureOf(yield* h.run(Guard.claim("nonce-1")))._tag).toBe("ReplayDetected")
      })
    )
  }
})

describe("an ACL user that lacks a command", () => {
  const USER_PASSWORD = "limited-Pa55word"
  for (const mode of MODES) {
    it.scopedLive(`${mode}: a command the user may not run fails closed with NOPERM; the rest keeps working`, () =>
      Effect.gen(function* () {
        const redis = yield* redisServer()
        // may read and write entries, may not delete, scan or run scripts
        yield* cli(
          redis,
          "ACL",
          "SETUSER",
          "limited",
          "on",
          `>${USER_PASSWORD}`,
          "~*",
          "&*",
          "+@all",
          "-unlink",
          "-del",
          "-scan",
          "-evalsha",
          "-eval"
        )
        const h = yield* harness(
          modeLayer(mode, clientLayer(redis.url, { username: "limited", password: USER_PASSWORD }))
        )
        expect(yield* h.run(Items.set("k", { n: 1 }))).toEqual(Exit.void)
        expectRefused(yield* h.run(Items.invalidate("k")), /NOPERM/, "invalidate")
        expectRefused(yield* h.run(Items.clear()), /NOPERM/, "clear")
        expectRefused(yield* h.run(Limit.consume("alice")), /NOPERM/, "consume")
        // the refused deletion changed nothing, and Redis is not treated as down (no cooldown, no event)
        expect(yield* h.run(Items.get("k"))).toEqual(
          Exit.succeed(Option.some({ value: { n: 1 }, backend: "redis", degraded: false, near: false, stale: false }))
        )
        expect(Exit.isSuccess(yield* h.run(Guard.claim("n")))).toBe(true)
        expect(h.logs).toEqual([])
        expect(yield* stats(h)).toMatchObject({ backend: "redis", degraded: false, localEntries: 0 })
        // the connection is really the limited user's
        expect(yield* cli(redis, "CLIENT", "LIST")).toMatch(/user=limited/)
      })
    )
  }
})

describe("FLUSHALL in the middle of traffic", () => {
  for (const mode of MODES) {
    it.scopedLive(`${mode}: every read is the key's own value or a miss; no error, no event, no fallback`, () =>
      Effect.gen(function* () {
        const redis = yield* redisServer()
        const h = yield* harness(modeLayer(mode, clientLayer(redis.url)))
        const outcomes = { hits: 0, misses: 0 }
        const worker = (w: number) =>
          Effect.gen(function* () {
            for (let i = 0; i < 60; i++) {
              const key = `w${w}-k${i % 5}`
              const set = yield* h.run(Items.set(key, { n: w * 1_000 + i }))
              expect(set).toEqual(Exit.void)
              const read = yield* h.run(Items.get(key))
              expect(Exit.isSuccess(read)).toBe(true)
              const value = Exit.isSuccess(read) ? read.value : Option.none()
              if (Option.isSome(value)) {
                // this worker's own last write, from Redis: never another key's value, never stale local state
                expect(value.value).toEqual({
                  value: { n: w * 1_000 + i },
                  backend: "redis",
                  degraded: false,
                  near: false,
                  stale: false
                })
                outcomes.hits++
              } else {
                outcomes.misses++
              }
              yield* Effect.yieldNow()
            }
          })
        const workers = yield* Effect.fork(
          Effect.forEach([1, 2, 3, 4, 5, 6, 7, 8], worker, { concurrency: "unbounded" })
        )
        for (let i = 0; i < 5; i++) {
          yield* Effect.sleep(Duration.millis(10))
          yield* cli(redis, "FLUSHALL", i % 2 === 0 ? "ASYNC" : "SYNC")
        }
        yield* Fiber.join(workers)
        expect(outcomes.hits + outcomes.misses).toBe(8 * 60)
        expect(outcomes.hits).toBeGreaterThan(0)
        expect(h.logs).toEqual([])
        expect(yield* stats(h)).toMatchObject({ backend: "redis", degraded: false, failures: 0, localEntries: 0 })
      })
    )
  }

  it.scopedLive("documented loss: a flush forgets claimed nonces and spent rate-limit budgets", () =>
    Effect.gen(function* () {
      const redis = yield* redisServer()
      const h = yield* harness(modeLayer("StrictDistributed", clientLayer(redis.url)))
      expect(Exit.isSuccess(yield* h.run(Guard.claim("nonce")))).toBe(true)
      expect(failureOf(yield* h.run(Guard.claim("nonce")))._tag).toBe("ReplayDetected")
      for (let i = 0; i < 3; i++) expect(Exit.isSuccess(yield* h.run(Limit.enforce("alice")))).toBe(true)
      expect(failureOf(yield* h.run(Limit.enforce("alice")))._tag).toBe("RateLimitExceeded")
      yield* cli(redis, "FLUSHALL")
      // Redis is the only record: what it lost is lost (see docs/security.md, "failover and flush loss")
      expect(Exit.isSuccess(yield* h.run(Guard.claim("nonce")))).toBe(true)
      expect(Exit.isSuccess(yield* h.run(Limit.enforce("alice")))).toBe(true)
      expect(h.logs).toEqual([])
    })
  )
})
