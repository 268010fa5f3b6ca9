/**
 * effect-failclosed/RateLimiterStore under @effect/experimental's RateLimiter: the cases of its own
 * test/RateLimiter.test.ts (with TestClock on LocalOnly, whose decisions follow Effect's Clock, and
 * with real time on a redis-server), budgets shared across nodes, the delay mode, input rejected
 * before deciding, and the outage cases (kill, pause) with the bounds of the core.
 */
import * as ExperimentalRateLimiter from "@effect/experimental/RateLimiter"
import { assert, describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Exit, Layer, Option, TestClock } from "effect"
import { type DistributedCache, LocalOnly, RateLimiter, RedisClient, strictDistributed } from "effect-failclosed"
import { backendUnavailable, layer, make } from "effect-failclosed/RateLimiterStore"
import {
  clientLayer,
  COMMAND_TIMEOUT_MS,
  COOLDOWN_MS,
  eventKindsOf,
  failureOf,
  kill,
  timed,
  withLogs
} from "./support/modeTests.js"
import { LOAD_COMMAND_TIMEOUT_MS } from "./support/nodes.js"
import { type RedisServer, redisServer } from "./support/RedisServer.js"

/** @effect/experimental's RateLimiter over our store over a cache */
const limiterOn = <E>(cache: Layer.Layer<DistributedCache, E>) =>
  ExperimentalRateLimiter.layer.pipe(Layer.provide(layer({ name: "api" })), Layer.provide(cache))

const strictLayer = (url: string, commandTimeoutMs = COMMAND_TIMEOUT_MS) =>
  strictDistributed({ cooldown: Duration.millis(COOLDOWN_MS) }).pipe(
    Layer.provide(
      commandTimeoutMs === COMMAND_TIMEOUT_MS
        ? clientLayer(url)
        : RedisClient.layer({ url, commandTimeout: Duration.millis(commandTimeoutMs) })
    )
  )

/** a fresh redis-server (stopped with the scope) and `nodes` limiters, each with its own connection and cache */
const onFreshRedis = (nodes: number, commandTimeoutMs?: number) =>
  Effect.gen(function* () {
    const redis = yield* redisServer()
    const limiters = []
    for (let i = 0; i < nodes; i++) {
      const context = yield* Layer.build(Layer.fresh(limiterOn(strictLayer(redis.url, commandTimeoutMs))))
      limiters.push(Effect.provide(ExperimentalRateLimiter.RateLimiter, context))
    }
    return { redis, limiters }
  })

/** sleeps until just after the start of a window of `windowMillis` (fixed windows are aligned to the clock) */
const startOfWindow = (windowMillis: number) =>
  Effect.suspend(() => Effect.sleep(Duration.millis(windowMillis - (Date.now() % windowMillis) + 20)))

const keysOf = (redis: RedisServer) =>
  Effect.promise(() => redis.command("KEYS", "*")).pipe(Effect.map((out) => out.split("\n").filter((k) => k !== "")))

/** @effect/experimental's RateLimiter over our store on LocalOnly */
const OnLocalOnly = layer().pipe(Layer.provide(LocalOnly))

/** the consume of its test cases: 5 per minute on key "a" */
const consumeOf = (options: {
  readonly algorithm: "fixed-window" | "token-bucket"
  readonly onExceeded: "fail" | "delay"
}) =>
  Effect.map(ExperimentalRateLimiter.make, (limiter) =>
    limiter.consume({ ...options, window: "1 minute", limit: 5, tokens: 1, key: "a" })
  )

describe("RateLimiterStore: @effect/experimental's RateLimiter cases, TestClock on LocalOnly", () => {
  it("a name ending with :paced is refused: it would share state with the pacer of another store", () => {
    expect(() => make({ name: "api:paced" })).toThrow(/must not end with ":paced"/)
    expect(() => make({ name: "api:pacedx" })).not.toThrow()
  })

  it.effect("fixed-window, onExceeded fail: 5 per minute, retryAfter to the end of the window", () =>
    Effect.gen(function* () {
      const consume = yield* consumeOf({ algorithm: "fixed-window", onExceeded: "fail" })
      yield* Effect.repeatN(consume, 3)
      let result = yield* consume
      expect(result.delay).toEqual(Duration.zero)
      expect(result.remaining).toBe(0)
      expect(result.resetAfter).toEqual(Duration.minutes(1))
      let error = yield* Effect.flip(consume)
      assert(error.reason === "Exceeded")
      expect(error.retryAfter).toEqual(Duration.minutes(1))
      expect(error.remaining).toEqual(0)

      yield* TestClock.adjust(Duration.seconds(30))

      error = yield* Effect.flip(consume)
      assert(error.reason === "Exceeded")
      expect(error.retryAfter).toEqual(Duration.seconds(30))
      expect(error.remaining).toEqual(0)

      yield* TestClock.adjust(Duration.seconds(30))

      result = yield* consume
      expect(result.delay).toEqual(Duration.zero)
      expect(result.remaining).toEqual(4)
    }).pipe(Effect.provide(OnLocalOnly))
  )

  it.effect("token-bucket, onExceeded fail: retryAfter one refill interval, refilled at limit per window", () =>
    Effect.gen(function* () {
      const consume = yield* consumeOf({ algorithm: "token-bucket", onExceeded: "fail" })
      const refillRate = Duration.unsafeDivide(Duration.minutes(1), 5)
      yield* Effect.repeatN(consume, 3)
      let result = yield* consume
      expect(result.delay).toEqual(Duration.zero)
      const error = yield* Effect.flip(consume)
      assert(error.reason === "Exceeded")
      expect(error.retryAfter).toEqual(Duration.seconds(12))
      expect(error.remaining).toEqual(0)

      yield* TestClock.adjust(Duration.times(refillRate, 3))

      result = yield* consume
      expect(result.delay).toEqual(Duration.zero)
      expect(result.remaining).toEqual(2)
    }).pipe(Effect.provide(OnLocalOnly))
  )

  it.effect("onExceeded delay never takes more than the limit: it waits, then takes, with delay zero", () =>
    Effect.gen(function* () {
      const consume = yield* consumeOf({ algorithm: "token-bucket", onExceeded: "delay" })
      yield* Effect.repeatN(consume, 4)
      const sixth = yield* Effect.fork(consume)
      yield* TestClock.adjust(Duration.seconds(11))
      expect(sixth.unsafePoll()).toBe(null)
      yield* TestClock.adjust(Duration.seconds(1))
      const result = yield* sixth.await
      assert(Exit.isSuccess(result))
      expect(result.value.delay).toEqual(Duration.zero)
      expect(result.value.remaining).toBe(0)
    }).pipe(Effect.provide(OnLocalOnly))
  )
})

describe("RateLimiterStore: on a redis-server", () => {
  it.scopedLive("fixed-window, onExceeded fail: the budget is shared by two nodes and resets with the window", () =>
    Effect.gen(function* () {
      const {
        limiters: [a, b],
        redis
      } = yield* onFreshRedis(2, LOAD_COMMAND_TIMEOUT_MS)
      const windowMillis = 2_000
      const consume = (node: typeof a) =>
        Effect.flatMap(node!, (limiter) =>
          limiter.consume({ algorithm: "fixed-window", window: Duration.millis(windowMillis), limit: 5, key: "a" })
        )
      yield* startOfWindow(windowMillis)
      const remaining = []
      for (const node of [a, b, a, b, a]) remaining.push((yield* consume(node)).remaining)
      expect(remaining).toEqual([4, 3, 2, 1, 0])
      const error = yield* Effect.flip(consume(b))
      assert(error.reason === "Exceeded")
      expect(Duration.toMillis(error.retryAfter)).toBeGreaterThan(0)
      expect(Duration.toMillis(error.retryAfter)).toBeLessThanOrEqual(windowMillis)
      yield* Effect.sleep(error.retryAfter)
      expect((yield* consume(a)).remaining).toBe(4)
      // one key per limiter and subject, under this library's layout; the subject is hashed
      const keys = yield* keysOf(redis)
      expect(keys).toHaveLength(1)
      expect(keys[0]).toMatch(/^fc:\{rf:[A-Za-z0-9._~-]+:-:[A-Za-z0-9_-]{24}\}$/)
    })
  )

  it.scopedLive("token-bucket, onExceeded fail: retryAfter one refill interval, then refilled", () =>
    Effect.gen(function* () {
      const {
        limiters: [node]
      } = yield* onFreshRedis(1, LOAD_COMMAND_TIMEOUT_MS)
      const limiter = yield* node!
      // one token per 1.2 s: a loaded machine cannot stretch the burst below into a refill
      const consume = limiter.consume({ algorithm: "token-bucket", window: "6 seconds", limit: 5, key: "a" })
      yield* Effect.repeatN(consume, 4)
      const error = yield* Effect.flip(consume)
      assert(error.reason === "Exceeded")
      expect(error.retryAfter).toEqual(Duration.millis(1_200))
      expect(error.remaining).toBe(0)
      assert((yield* Effect.flip(consume)).reason === "Exceeded")
      yield* Effect.sleep("2400 millis")
      // two tokens refilled (more only if this process slept longer), one taken
      const remaining = (yield* consume).remaining
      expect(remaining).toBeGreaterThanOrEqual(1)
      expect(remaining).toBeLessThan(4)
    })
  )

  it.scopedLive("onExceeded delay waits for the bucket, and a fixed window is paced at window / limit", () =>
    Effect.gen(function* () {
      const {
        limiters: [node]
      } = yield* onFreshRedis(1, LOAD_COMMAND_TIMEOUT_MS)
      const withLimiter = yield* Effect.provideServiceEffect(
        ExperimentalRateLimiter.makeWithRateLimiter,
        ExperimentalRateLimiter.RateLimiter,
        node!
      )
      let runs = 0
      const work = Effect.sync(() => runs++)
      const bucket = withLimiter({
        key: "b",
        limit: 5,
        window: "1500 millis",
        algorithm: "token-bucket",
        onExceeded: "delay"
      })
      // 6 calls on a bucket of 5 refilled one per 300 ms: the sixth waits for its token, not for the window
      const [six, waited] = yield* timed(Effect.repeatN(bucket(work), 5))
      expect(Exit.isSuccess(six)).toBe(true)
      expect(waited).toBeGreaterThanOrEqual(299)
      expect(waited).toBeLessThan(1_500)

      const paced = withLimiter({
        key: "f",
        limit: 5,
        window: "1 second",
        algorithm: "fixed-window",
        onExceeded: "delay"
      })
      const [three, took] = yield* timed(Effect.repeatN(paced(work), 2))
      expect(Exit.isSuccess(three)).toBe(true)
      // paced at one per 200 ms: three calls span at least 400 ms, far less than a window each
      expect(took).toBeGreaterThanOrEqual(2 * 200 - 2)
      expect(took).toBeLessThan(2 * 1_000)
      expect(runs).toBe(9)
    })
  )

  it.scopedLive(
    "input the store rejects is a RateLimitStoreError caused by RateLimitInputInvalid, before deciding",
    () =>
      Effect.gen(function* () {
        const {
          limiters: [node],
          redis
        } = yield* onFreshRedis(1, LOAD_COMMAND_TIMEOUT_MS)
        const limiter = yield* node!
        for (const options of [
          { key: "", limit: 5, window: "1 second" },
          { key: "x".repeat(1_025), limit: 5, window: "1 second" },
          { key: "a", limit: 5, window: "1 second", tokens: 1.5 },
          { key: "a", limit: 2.5, window: "1 second" }
        ] as const) {
          const error = yield* Effect.flip(limiter.consume(options))
          assert(error.reason === "StoreError")
          expect(Option.isNone(backendUnavailable(error))).toBe(true)
          if (options.limit === 5) expect(error.cause).toBeInstanceOf(RateLimiter.RateLimitInputInvalid)
        }
        expect(yield* keysOf(redis)).toEqual([])
      })
  )
})

describe("RateLimiterStore: Redis unavailable", () => {
  for (const how of ["killed", "paused"] as const) {
    it.scopedLive(
      `${how}: StrictDistributed fails closed with a RateLimitStoreError caused by CacheBackendUnavailable, the effect never runs`,
      () =>
        withLogs((logs) =>
          Effect.gen(function* () {
            const {
              limiters: [node],
              redis
            } = yield* onFreshRedis(1)
            const withLimiter = yield* Effect.provideServiceEffect(
              ExperimentalRateLimiter.makeWithRateLimiter,
              ExperimentalRateLimiter.RateLimiter,
              node!
            )
            let runs = 0
            const work = Effect.sync(() => runs++)
            for (const algorithm of ["fixed-window", "token-bucket"] as const) {
              yield* withLimiter({ key: "a", limit: 5, window: "1 minute", algorithm })(work)
            }
            if (how === "killed") yield* kill(redis)
            else redis.pause()
            for (const algorithm of ["fixed-window", "token-bucket"] as const) {
              for (const onExceeded of ["fail", "delay"] as const) {
                const label = `${algorithm} ${onExceeded}`
                const [exit, elapsed] = yield* timed(
                  withLimiter({ key: "a", limit: 5, window: "1 minute", algorithm, onExceeded })(work)
                )
                const error = failureOf(exit)
                assert(error.reason === "StoreError", label)
                const unavailable = backendUnavailable(error)
                assert(Option.isSome(unavailable), label)
                expect(unavailable.value.mode).toBe("StrictDistributed")
                expect(elapsed, label).toBeLessThan(COMMAND_TIMEOUT_MS + 100)
              }
            }
            expect(runs).toBe(2)
            if (how === "paused") redis.resume()
            expect(eventKindsOf("StrictDistributed")(logs)).toContain("BACKEND_UNAVAILABLE_AT_RUNTIME")
          })
        )
    )
  }
})
