import { describe, expect, it } from "@effect/vitest"
import { Clock, Duration, Effect, Layer, LogLevel, Logger, Schema, TestClock } from "effect"
import {
  type DistributedCache,
  explicitDegraded,
  Keyspace,
  LocalOnly,
  RateLimiter,
  RedisClient
} from "effect-failclosed"
import { cli, expectFailsClosed, FAIL_FAST_COMMAND_TIMEOUT_MS, type Node, on, strictNode } from "./support/nodes.js"
import { type RedisServer, redisServer } from "./support/RedisServer.js"

const COMMAND_TIMEOUT_MS = FAIL_FAST_COMMAND_TIMEOUT_MS

const degradedNode = (url: string) =>
  Layer.build(
    Layer.fresh(
      explicitDegraded({ cooldown: "5 seconds" }).pipe(
        Layer.provide(RedisClient.layer({ url, commandTimeout: Duration.millis(COMMAND_TIMEOUT_MS) }))
      )
    )
  )

/** security events are expected in the outage tests; keep the output readable */
const quiet = Logger.withMinimumLogLevel(LogLevel.Error)

/** `callers` fibers per node, each consuming `rounds` times */
const hammer = (
  nodes: ReadonlyArray<Node>,
  callers: number,
  rounds: number,
  consume: Effect.Effect<RateLimiter.RateLimitResult, unknown, DistributedCache>
) =>
  Effect.forEach(
    nodes.flatMap((node) => Array.from({ length: callers }, () => node)),
    (node) => Effect.forEach(Array.from({ length: rounds }), () => on(node)(consume)),
    { concurrency: "unbounded" }
  ).pipe(Effect.map((results) => results.flat()))

const allowedOf = (results: ReadonlyArray<RateLimiter.RateLimitResult>) => results.filter((r) => r.allowed)

describe("RateLimiter options", () => {
  it("rejects invalid options synchronously, before anything touches Redis", () => {
    const valid = { name: "api", limit: 10, window: "1 second", algorithm: "fixed-window" } as const
    expect(() => RateLimiter.make(valid)).not.toThrow()
    const cases: Array<[Partial<RateLimiter.RateLimiterOptions>, RegExp]> = [
      [{ limit: 0 }, /limit must be a positive integer/],
      [{ limit: -3 }, /limit must be a positive integer/],
      [{ limit: 1.5 }, /limit must be a positive integer/],
      [{ limit: Number.NaN }, /limit must be a positive integer/],
      [{ window: 0 }, /window must be at least 1 millisecond/],
      [{ window: "-5 seconds" as never }, /window must be/],
      [{ window: Duration.infinity }, /window must be a finite duration/],
      [{ window: "soon" as never }, /window must be a finite duration/],
      [{ name: "" }, /name must be a string/],
      [{ name: "x".repeat(129) }, /name must be a string/],
      [{ algorithm: "leaky" as never }, /algorithm must be/],
      [{ maxSubjectLength: 0 }, /maxSubjectLength must be a positive integer/],
      [{ algorithm: "token-bucket", limit: 1_000_000_000, window: "1000 days" }, /below 2\^53/]
    ]
    for (const [override, message] of cases) {
      expect(() => RateLimiter.make({ ...valid, ...override })).toThrow(message)
    }
  })
})

describe("RateLimiter across two nodes sharing one Redis", () => {
  for (const algorithm of ["fixed-window", "token-bucket"] as const) {
    it.scopedLive(`${algorithm}: 2 × 64 concurrent callers are allowed exactly \`limit\` in total`, () =>
      Effect.gen(function* () {
        const redis = yield* redisServer()
        const nodes = [yield* strictNode(redis.url), yield* strictNode(redis.url)]
        const limit = 50
        // one day: the window cannot end (fixed) nor a token refill (token-bucket: one per ~29 minutes) during the test
        const limiter = RateLimiter.make({ name: `exact-${algorithm}`, limit, window: "1 day", algorithm })
        const results = yield* hammer(nodes, 64, 3, limiter.consume("alice"))
        expect(results).toHaveLength(2 * 64 * 3)
        const allowed = allowedOf(results)
        expect(allowed).toHaveLength(limit)
        // every allowed decision saw a different budget: the decisions were serialised, none was lost
        expect(allowed.map((r) => r.remaining).sort((a, b) => a - b)).toEqual(
          Array.from({ length: limit }, (_, i) => i)
        )
        for (const r of results) {
          expect(r.backend).toBe("redis")
          expect(r.degraded).toBe(false)
          if (!r.allowed) {
            expect(r.remaining).toBe(0)
            expect(Duration.toMillis(r.retryAfter)).toBeGreaterThan(0)
          }
        }
        // another subject has its own budget
        expect((yield* on(nodes[1]!)(limiter.consume("bob"))).allowed).toBe(true)
      })
    )
  }

  it.scopedLive("fixed-window and token-bucket agree across nodes whose clocks are skewed by hours", () =>
    Effect.gen(function* () {
      const redis = yield* redisServer()
      const a = yield* strictNode(redis.url)
      const hoursAhead = skewedClock(6 * 60 * 60 * 1000)
      const b = yield* Effect.withClock(strictNode(redis.url), hoursAhead)
      for (const algorithm of ["fixed-window", "token-bucket"] as const) {
        const limiter = RateLimiter.make({ name: `skew-${algorithm}`, limit: 3, window: "1 hour", algorithm })
        for (let i = 0; i < 3; i++) expect((yield* on(a)(limiter.consume("carol"))).allowed).toBe(true)
        const fromB = yield* on(b)(limiter.consume("carol")).pipe(Effect.withClock(hoursAhead))
        expect(fromB.allowed).toBe(false)
      }
    })
  )

  it.scopedLive("sliding-window never allows more than `limit` in any window, under 2 × 64 concurrent callers", () =>
    Effect.gen(function* () {
      const redis = yield* redisServer()
      const nodes = [yield* strictNode(redis.url), yield* strictNode(redis.url)]
      const limit = 20
      const windowMillis = 800
      const limiter = RateLimiter.make({ name: "sliding", limit, window: windowMillis, algorithm: "sliding-window" })
      const run = yield* slidingTraffic(redis, nodes, limiter, windowMillis)
      expect(run.maxInWindow).toBeLessThanOrEqual(limit)
      // and it does let traffic through again as earlier decisions leave the window
      expect(run.allowed).toBeGreaterThanOrEqual(2 * limit)
      expect(run.denied).toBeGreaterThan(0)
    })
  )

  it.scopedLive("the sliding-window check above does catch a limiter that is not exact (fixed-window)", () =>
    Effect.gen(function* () {
      const redis = yield* redisServer()
      const nodes = [yield* strictNode(redis.url), yield* strictNode(redis.url)]
      const limit = 20
      const windowMillis = 800
      const limiter = RateLimiter.make({ name: "fixed", limit, window: windowMillis, algorithm: "fixed-window" })
      const run = yield* slidingTraffic(redis, nodes, limiter, windowMillis)
      // traffic starts mid-window: a fixed window allows a second burst at its boundary, half a window later
      expect(run.maxInWindow).toBeGreaterThan(limit)
    })
  )

  it.scopedLive("tenants have separate budgets, whatever characters a tenant id holds", () =>
    Effect.gen(function* () {
      const redis = yield* redisServer()
      const node = on(yield* strictNode(redis.url))
      for (const algorithm of ["fixed-window", "sliding-window", "token-bucket"] as const) {
        const limiter = RateLimiter.make({ name: `tenants-${algorithm}`, limit: 2, window: "1 minute", algorithm })
        yield* node(limiter.consume("dave", { tenant: "acme", cost: 2 }))
        expect((yield* node(limiter.consume("dave", { tenant: "acme" }))).allowed).toBe(false)
        for (const tenant of [undefined, "globex", "acme:", "-", "acme}", "{acme", "t", "\ud800", "*"]) {
          const r = yield* node(limiter.consume("dave", { tenant, cost: 2 }))
          expect(r.allowed, `tenant ${JSON.stringify(tenant)}`).toBe(true)
        }
        // the budgets used above are each used up now, independently
        expect((yield* node(limiter.consume("dave", { tenant: "globex" }))).allowed).toBe(false)
        expect((yield* node(limiter.consume("dave"))).allowed).toBe(false)
      }
    })
  )

  it.scopedLive(
    "every key has a TTL, one hash tag per decision, the subject only hashed and the tenant as its segment",
    () =>
      Effect.gen(function* () {
        const redis = yield* redisServer()
        const node = on(yield* strictNode(redis.url))
        const Things = Keyspace.make({ name: "rl", key: Schema.String, value: Schema.String, timeToLive: "1 hour" })
        for (const algorithm of ["fixed-window", "sliding-window", "token-bucket"] as const) {
          const limiter = RateLimiter.make({ name: "rl", limit: 5, window: "1 minute", algorithm })
          yield* node(limiter.consume("erin@example.com", { tenant: "secret-tenant" }))
          yield* node(limiter.consume("erin@example.com", { tenant: "secret-tenant", cost: 5 })) // a denial writes too
        }
        yield* node(Things.set("x", "y", { tenant: "secret-tenant" }))
        expect(yield* node(Things.clear({ allTenants: true }))).toBe(1)
        const keys = (yield* cli(redis, "--scan")).split("\n").filter((k) => k !== "")
        expect(keys).toHaveLength(4) // fixed: 1, sliding: log + meta, token: 1
        const layout = /^fc:\{r[fst]:[A-Za-z0-9._~-]+:[A-Za-z0-9._~-]+:[A-Za-z0-9_-]{24}\}(:l|:m)?$/
        for (const key of keys) {
          expect(key).toMatch(layout)
          expect(key).not.toContain("erin")
          // a tenant id of [A-Za-z0-9._-] is its own segment (0.2.0 layout); the subject is only ever hashed
          expect(key).toContain(":secret-tenant:")
          const ttl = Number(yield* cli(redis, "PTTL", key))
          expect(ttl).toBeGreaterThan(0)
          expect(ttl).toBeLessThanOrEqual(60_000)
        }
        const tags = new Set(keys.filter((k) => k.startsWith("fc:{rs:")).map((k) => k.slice(0, k.indexOf("}") + 1)))
        expect(tags.size).toBe(1)
      })
  )

  it.scopedLive(
    "fixed window: a decision in a window adds to the count the window's first decision wrote, and keeps its TTL",
    () =>
      Effect.gen(function* () {
        const redis = yield* redisServer()
        const node = on(yield* strictNode(redis.url))
        const limiter = RateLimiter.make({ name: "fw", limit: 10, window: "1 hour", algorithm: "fixed-window" })
        expect((yield* node(limiter.consume("gina", { cost: 2 }))).remaining).toBe(8)
        const [key] = (yield* cli(redis, "--scan")).split("\n").filter((k) => k !== "")
        const [seconds, micros] = (yield* cli(redis, "TIME")).split("\n").map(Number)
        const hour = 3_600_000
        const start = Math.floor((seconds! * 1000 + Math.floor(micros! / 1000)) / hour) * hour
        expect(yield* cli(redis, "HGET", key!, "w")).toBe(String(start))
        // a count of this window as any node (of this version or an earlier one, which rewrote both fields and the
        // TTL on every decision) leaves it: 5 used, the TTL a marker that a decision must not reset
        yield* cli(redis, "HSET", key!, "c", "5")
        yield* cli(redis, "PEXPIRE", key!, "1234567")
        const r = yield* node(limiter.consume("gina", { cost: 3 }))
        expect([r.allowed, r.remaining]).toEqual([true, 2])
        expect(yield* cli(redis, "HGET", key!, "c")).toBe("8")
        expect(Number(yield* cli(redis, "PTTL", key!))).toBeLessThanOrEqual(1_234_567)
        expect(Number(yield* cli(redis, "PTTL", key!))).toBeGreaterThan(1_200_000)
        // a state of an earlier window is replaced: count from zero, TTL to this window's end
        yield* cli(redis, "HSET", key!, "w", String(start - hour), "c", "10")
        const fresh = yield* node(limiter.consume("gina"))
        expect([fresh.allowed, fresh.remaining]).toEqual([true, 9])
        expect(yield* cli(redis, "HGET", key!, "w")).toBe(String(start))
        expect(Number(yield* cli(redis, "PTTL", key!))).toBeLessThanOrEqual(start + hour - seconds! * 1000)
      })
  )

  it.scopedLive("decisions run as EVALSHA, and survive a SCRIPT FLUSH through the NOSCRIPT fallback", () =>
    Effect.gen(function* () {
      const redis = yield* redisServer()
      const node = on(yield* strictNode(redis.url))
      // one token back every 36 s: none comes back while the test runs, however busy the machine
      const limiter = RateLimiter.make({ name: "sha", limit: 100, window: "1 hour", algorithm: "token-bucket" })
      const calls = (command: string) =>
        Effect.map(cli(redis, "INFO", "commandstats"), (info) => {
          const m = new RegExp(`^cmdstat_${command}:calls=(\\d+)`, "m").exec(info)
          return m === null ? 0 : Number(m[1])
        })
      for (let i = 0; i < 10; i++) yield* node(limiter.consume("frank"))
      expect(yield* calls("eval")).toBe(1)
      expect(yield* calls("evalsha")).toBe(10)
      yield* cli(redis, "SCRIPT", "FLUSH")
      const r = yield* node(limiter.consume("frank"))
      expect(r).toMatchObject({ allowed: true, remaining: 89 })
      expect(yield* calls("eval")).toBe(2)
    })
  )

  it.scopedLive("token-bucket stays exact in Redis with 16-digit state (limit × window near 2^53)", () =>
    Effect.gen(function* () {
      const redis = yield* redisServer()
      const node = on(yield* strictNode(redis.url))
      // 800,000 tokens per 10^10 ms: state up to 8 × 10^15 units, one token back every 12.5 s
      const limit = 800_000
      const limiter = RateLimiter.make({ name: "big", limit, window: 1e10, algorithm: "token-bucket" })
      expect(yield* node(limiter.consume("big", { cost: limit - 1 }))).toMatchObject({ allowed: true, remaining: 1 })
      expect(yield* node(limiter.consume("big"))).toMatchObject({ allowed: true, remaining: 0 })
      const denied = yield* node(limiter.consume("big"))
      expect(denied).toMatchObject({ allowed: false, remaining: 0 })
      expect(Duration.toMillis(denied.retryAfter)).toBeGreaterThan(12_000)
      expect(Duration.toMillis(denied.retryAfter)).toBeLessThanOrEqual(12_500)
    })
  )

  for (const algorithm of ["fixed-window", "sliding-window", "token-bucket"] as const) {
    it.scopedLive(`${algorithm}: retryAfter from Redis is honest (denied before it, allowed after it)`, () =>
      Effect.gen(function* () {
        const redis = yield* redisServer()
        const node = on(yield* strictNode(redis.url))
        const windowMillis = 400
        const limiter = RateLimiter.make({ name: "honest", limit: 2, window: windowMillis, algorithm })
        if (algorithm === "fixed-window") {
          // fixed windows are aligned to multiples of their length (Redis' clock, this machine's):
          // start just after a boundary so the two calls below cannot straddle one on a slow machine
          yield* Effect.sleep(Duration.millis(windowMillis - (Date.now() % windowMillis) + 5))
        }
        expect((yield* node(limiter.consume("gina", { cost: 2 }))).allowed).toBe(true)
        const sentDenied = performance.now()
        const denied = yield* node(limiter.consume("gina"))
        expect(denied.allowed).toBe(false)
        const wait = Duration.toMillis(denied.retryAfter)
        expect(wait).toBeGreaterThan(0)
        expect(wait).toBeLessThanOrEqual(windowMillis)
        if (wait > 60) {
          yield* Effect.sleep(wait / 2)
          // only meaningful when the scheduler did not oversleep towards the deadline (a loaded machine)
          const sent = performance.now()
          const early = yield* node(limiter.consume("gina"))
          if (sent - sentDenied < wait - 50) expect(early.allowed).toBe(false)
          // a late early call that was allowed took the refilled budget: nothing more to check
          if (early.allowed) return
          yield* Effect.sleep(Duration.millis(Math.max(0, wait - (performance.now() - sentDenied))))
        }
        yield* Effect.sleep(Duration.millis(60))
        const again = yield* node(limiter.consume("gina"))
        expect(again.allowed).toBe(true)
      })
    )
  }
})

describe("RateLimiter fails closed", () => {
  it.scopedLive("strict consume and enforce fail with CacheBackendUnavailable within commandTimeout + 100 ms", () =>
    Effect.gen(function* () {
      for (const outage of ["kill", "pause"] as const) {
        const redis = yield* redisServer()
        const nodes = [
          yield* strictNode(redis.url, COMMAND_TIMEOUT_MS),
          yield* strictNode(redis.url, COMMAND_TIMEOUT_MS)
        ]
        for (const algorithm of ["fixed-window", "sliding-window", "token-bucket"] as const) {
          const limiter = RateLimiter.make({ name: `down-${algorithm}`, limit: 5, window: "1 minute", algorithm })
          expect((yield* on(nodes[0]!)(limiter.consume("hank"))).allowed).toBe(true)
        }
        if (outage === "kill") yield* Effect.promise(() => redis.kill())
        else redis.pause()
        for (const node of nodes) {
          for (const algorithm of ["fixed-window", "sliding-window", "token-bucket"] as const) {
            const limiter = RateLimiter.make({ name: `down-${algorithm}`, limit: 5, window: "1 minute", algorithm })
            for (const call of [limiter.consume("hank"), limiter.enforce("hank")]) {
              yield* expectFailsClosed(node, call, `${outage} ${algorithm}`)
            }
          }
        }
        yield* Effect.promise(() => redis.stop())
      }
    }).pipe(quiet)
  )

  it.scopedLive("invalid call input fails with RateLimitInputInvalid before anything reaches Redis", () =>
    Effect.gen(function* () {
      const redis = yield* redisServer()
      const node = on(yield* strictNode(redis.url))
      const limiter = RateLimiter.make({
        name: "input",
        limit: 5,
        window: "1 minute",
        algorithm: "sliding-window",
        maxSubjectLength: 64,
        maxTenantLength: 16
      })
      // Redis is gone: a call that reached the store would fail with CacheBackendUnavailable instead
      yield* Effect.promise(() => redis.kill())
      const cases: Array<[string, RateLimiter.ConsumeOptions | undefined, RegExp]> = [
        ["", undefined, /subject must be a non-empty string/],
        ["x".repeat(65), undefined, /subject is longer than 64/],
        ["ivan", { cost: 0 }, /cost must be a positive integer/],
        ["ivan", { cost: -1 }, /cost must be a positive integer/],
        ["ivan", { cost: 1.5 }, /cost must be a positive integer/],
        ["ivan", { cost: Number.NaN }, /cost must be a positive integer/],
        ["ivan", { cost: 6 }, /cost is larger than the limit \(5\)/],
        ["ivan", { tenant: "" }, /tenant id must be a non-empty string/],
        ["ivan", { tenant: "very-secret-tenant-id" }, /tenant id is longer than 16/]
      ]
      for (const [subject, options, reason] of cases) {
        for (const call of [limiter.consume(subject, options), limiter.enforce(subject, options)]) {
          const error = yield* Effect.flip(node(call))
          expect(error._tag).toBe("RateLimitInputInvalid")
          if (error._tag !== "RateLimitInputInvalid") continue
          expect(error.limiter).toBe("input")
          expect(error.message).toMatch(reason)
          expect(error.message).not.toContain("secret")
          expect(error.message).not.toContain("xxxx")
        }
      }
      // the largest accepted subject does reach the store (and fails closed there)
      const atLimit = yield* Effect.flip(node(limiter.consume("x".repeat(64), { cost: 5 })))
      expect(atLimit._tag).toBe("CacheBackendUnavailable")
    }).pipe(quiet)
  )

  it.scopedLive("ExplicitDegraded decides node-locally while Redis is down and marks every decision degraded", () =>
    Effect.gen(function* () {
      const redis = yield* redisServer()
      const node = on(yield* degradedNode(redis.url))
      const limiter = RateLimiter.make({ name: "degraded", limit: 2, window: "1 minute", algorithm: "fixed-window" })
      expect(yield* node(limiter.consume("judy"))).toMatchObject({ allowed: true, backend: "redis", degraded: false })
      yield* Effect.promise(() => redis.kill())
      const local = yield* Effect.forEach([1, 2, 3], () => node(limiter.consume("judy")))
      expect(local.map((r) => [r.allowed, r.backend, r.degraded])).toEqual([
        [true, "local_degraded", true],
        [true, "local_degraded", true],
        [false, "local_degraded", true]
      ])
      const error = yield* Effect.flip(node(limiter.enforce("judy")))
      expect(error._tag).toBe("RateLimitExceeded")
    }).pipe(quiet)
  )
})

describe("RateLimiter in memory (LocalOnly, TestClock)", () => {
  const consume = (limiter: RateLimiter.RateLimiter, subject: string, options?: RateLimiter.ConsumeOptions) =>
    Effect.map(limiter.consume(subject, options), (r) => [r.allowed, r.remaining, Duration.toMillis(r.retryAfter)])

  it.effect("fixed-window: the budget resets at the window boundary, retryAfter counts down to it", () =>
    Effect.gen(function* () {
      const limiter = RateLimiter.make({ name: "fw", limit: 3, window: "1 second", algorithm: "fixed-window" })
      yield* TestClock.adjust("250 millis")
      expect(yield* consume(limiter, "kim", { cost: 2 })).toEqual([true, 1, 0])
      expect(yield* consume(limiter, "kim")).toEqual([true, 0, 0])
      expect(yield* consume(limiter, "kim")).toEqual([false, 0, 750])
      yield* TestClock.adjust("749 millis")
      expect(yield* consume(limiter, "kim")).toEqual([false, 0, 1])
      yield* TestClock.adjust("1 millis")
      expect(yield* consume(limiter, "kim", { cost: 3 })).toEqual([true, 0, 0])
      const result = yield* limiter.consume("kim")
      expect(result).toMatchObject({ allowed: false, backend: "local", degraded: false })
      const error = yield* Effect.flip(limiter.enforce("kim"))
      expect(error._tag === "RateLimitExceeded" && Duration.toMillis(error.retryAfter)).toBe(1000)
    }).pipe(Effect.provide(LocalOnly))
  )

  it.effect("sliding-window: a cost leaves the budget exactly one window after it was taken", () =>
    Effect.gen(function* () {
      const limiter = RateLimiter.make({ name: "sw", limit: 5, window: "1 second", algorithm: "sliding-window" })
      expect(yield* consume(limiter, "lee", { cost: 3 })).toEqual([true, 2, 0])
      yield* TestClock.adjust("500 millis")
      expect(yield* consume(limiter, "lee", { cost: 2 })).toEqual([true, 0, 0])
      yield* TestClock.adjust("100 millis")
      // a fixed window would have reset at 1000; the sliding log waits for the cost taken at 0
      expect(yield* consume(limiter, "lee")).toEqual([false, 0, 400])
      expect(yield* consume(limiter, "lee", { cost: 4 })).toEqual([false, 0, 900])
      yield* TestClock.adjust("400 millis")
      expect(yield* consume(limiter, "lee", { cost: 3 })).toEqual([true, 0, 0])
      expect(yield* consume(limiter, "lee")).toEqual([false, 0, 500])
      yield* TestClock.adjust("499 millis")
      expect(yield* consume(limiter, "lee")).toEqual([false, 0, 1])
      yield* TestClock.adjust("1 millis")
      expect(yield* consume(limiter, "lee", { cost: 2 })).toEqual([true, 0, 0])
    }).pipe(Effect.provide(LocalOnly))
  )

  it.effect("sliding-window: no window of 1 second ever holds more than the limit (1 ms steps for 5 s)", () => {
    const clock = manualClock()
    return Effect.gen(function* () {
      const limit = 7
      const limiter = RateLimiter.make({ name: "sw-all", limit, window: "1 second", algorithm: "sliding-window" })
      const allowedAt: Array<number> = []
      for (let t = 0; t < 5000; t += 1) {
        // a bursty pattern: three attempts every 7 ms, one every other ms
        const attempts = t % 7 === 0 ? 3 : t % 2
        for (let k = 0; k < attempts; k++) if ((yield* limiter.consume("max")).allowed) allowedAt.push(t)
        clock.advance(1)
      }
      let worst = 0
      for (let i = 0; i < allowedAt.length; i++) {
        let j = i
        while (j < allowedAt.length && allowedAt[j]! < allowedAt[i]! + 1000) j++
        worst = Math.max(worst, j - i)
      }
      expect(worst).toBe(limit)
      expect(allowedAt.length).toBe(5 * limit)
    }).pipe(Effect.provide(LocalOnly), Effect.withClock(clock))
  })

  it.effect("token-bucket: bursts up to the limit, then refills continuously at limit per window", () =>
    Effect.gen(function* () {
      const limiter = RateLimiter.make({ name: "tb", limit: 10, window: "10 seconds", algorithm: "token-bucket" })
      for (let i = 9; i >= 0; i--) expect(yield* consume(limiter, "mia")).toEqual([true, i, 0])
      expect(yield* consume(limiter, "mia")).toEqual([false, 0, 1000])
      expect(yield* consume(limiter, "mia", { cost: 3 })).toEqual([false, 0, 3000])
      yield* TestClock.adjust("999 millis")
      expect(yield* consume(limiter, "mia")).toEqual([false, 0, 1])
      yield* TestClock.adjust("1 millis")
      expect(yield* consume(limiter, "mia")).toEqual([true, 0, 0])
      yield* TestClock.adjust("2500 millis")
      expect(yield* consume(limiter, "mia", { cost: 2 })).toEqual([true, 0, 0])
      expect(yield* consume(limiter, "mia")).toEqual([false, 0, 500])
      yield* TestClock.adjust("1 hour")
      expect(yield* consume(limiter, "mia", { cost: 10 })).toEqual([true, 0, 0])
    }).pipe(Effect.provide(LocalOnly))
  )

  it.effect("token-bucket: a rate that is not a whole number of milliseconds loses and gains nothing", () => {
    const clock = manualClock()
    return Effect.gen(function* () {
      // 3 per second: one token every 333.33… ms
      const limiter = RateLimiter.make({ name: "tb-frac", limit: 3, window: "1 second", algorithm: "token-bucket" })
      const allowedAt: Array<number> = []
      for (let t = 0; t < 10_000; t += 1) {
        if ((yield* limiter.consume("ned")).allowed) allowedAt.push(t)
        clock.advance(1)
      }
      // the burst (one consume per millisecond), then token k at the first millisecond >= k × 1000/3
      const expected = [0, 1, 2]
      for (let k = 1; (k * 1000) / 3 < 10_000; k++) expected.push(Math.ceil((k * 1000) / 3))
      expect(allowedAt).toEqual(expected)
    }).pipe(Effect.provide(LocalOnly), Effect.withClock(clock))
  })

  it.effect("tenants and subjects have separate budgets in memory too", () =>
    Effect.gen(function* () {
      const limiter = RateLimiter.make({ name: "mem", limit: 1, window: "1 minute", algorithm: "token-bucket" })
      expect((yield* limiter.consume("olga", { tenant: "a" })).allowed).toBe(true)
      expect((yield* limiter.consume("olga", { tenant: "a" })).allowed).toBe(false)
      expect((yield* limiter.consume("olga", { tenant: "b" })).allowed).toBe(true)
      expect((yield* limiter.consume("olga")).allowed).toBe(true)
      expect((yield* limiter.consume("olgb", { tenant: "a" })).allowed).toBe(true)
      // a second limiter of another algorithm under the same name does not share state
      const other = RateLimiter.make({ name: "mem", limit: 1, window: "1 minute", algorithm: "fixed-window" })
      expect((yield* other.consume("olga", { tenant: "a" })).allowed).toBe(true)
    }).pipe(Effect.provide(LocalOnly))
  )

  it.effect("consume needs a DistributedCache and its errors are typed", () =>
    Effect.gen(function* () {
      const limiter = RateLimiter.make({ name: "types", limit: 1, window: "1 minute", algorithm: "fixed-window" })
      const handled = limiter.enforce("pat").pipe(
        Effect.catchTags({
          RateLimitExceeded: () => Effect.succeed("429" as const),
          CacheBackendUnavailable: () => Effect.succeed("503" as const),
          RateLimitInputInvalid: () => Effect.succeed("400" as const)
        })
      )
      type Errors = Effect.Effect.Error<typeof handled>
      const noErrors: [Errors] extends [never] ? true : false = true
      expect(noErrors).toBe(true)
      yield* Effect.provide(handled, LocalOnly)
    })
  )
})

/**
 * A Clock moved by hand, for the step-by-step sweeps above (TestClock.adjust yields to the
 * scheduler on every call, which makes thousands of steps slow); the sweeps only read the time.
 */
const manualClock = (): Clock.Clock & { advance: (millis: number) => void } => {
  let now = 0
  return {
    [Clock.ClockTypeId]: Clock.ClockTypeId,
    unsafeCurrentTimeMillis: () => now,
    currentTimeMillis: Effect.sync(() => now),
    unsafeCurrentTimeNanos: () => BigInt(now) * 1_000_000n,
    currentTimeNanos: Effect.sync(() => BigInt(now) * 1_000_000n),
    sleep: () => Effect.dieMessage("manualClock cannot sleep"),
    advance: (millis) => {
      now += millis
    }
  }
}

/** a Clock that is `offsetMillis` ahead of the real one */
const skewedClock = (offsetMillis: number): Clock.Clock => {
  const real = Clock.make()
  const nanos = () => real.unsafeCurrentTimeNanos() + BigInt(offsetMillis) * 1_000_000n
  return {
    [Clock.ClockTypeId]: Clock.ClockTypeId,
    unsafeCurrentTimeMillis: () => real.unsafeCurrentTimeMillis() + offsetMillis,
    currentTimeMillis: Effect.sync(() => real.unsafeCurrentTimeMillis() + offsetMillis),
    unsafeCurrentTimeNanos: nanos,
    currentTimeNanos: Effect.sync(nanos),
    sleep: (duration) => real.sleep(duration)
  }
}

/**
 * 2 × 64 callers, each consuming then pausing 10–30 ms, for 2.5 windows, starting half a window
 * into a window of the server's epoch clock. Returns the most allowed decisions that certainly
 * happened within one window: decisions whose whole round trip [sent, answered] lies inside an
 * interval of one window length (the server decided somewhere in that round trip, so an exact
 * limiter can never have more than `limit` of them).
 */
const slidingTraffic = (
  redis: RedisServer,
  nodes: ReadonlyArray<Node>,
  limiter: RateLimiter.RateLimiter,
  windowMillis: number
) =>
  Effect.gen(function* () {
    const [seconds, micros] = (yield* cli(redis, "TIME")).split("\n").map(Number)
    const serverNow = seconds! * 1000 + Math.floor(micros! / 1000)
    const offset = serverNow % windowMillis
    const wait = (windowMillis / 2 - offset + windowMillis) % windowMillis
    yield* Effect.sleep(Duration.millis(wait))
    const end = performance.now() + 2.5 * windowMillis
    const allowed: Array<readonly [number, number]> = []
    let denied = 0
    const caller = (node: Node) =>
      Effect.whileLoop({
        while: () => performance.now() < end,
        body: () =>
          Effect.gen(function* () {
            const sent = performance.now()
            const r = yield* on(node)(limiter.consume("quinn"))
            const answered = performance.now()
            if (r.allowed) allowed.push([sent, answered])
            else denied++
            yield* Effect.sleep(Duration.millis(10 + Math.random() * 20))
          }),
        step: () => {}
      })
    yield* Effect.forEach(
      nodes.flatMap((node) => Array.from({ length: 64 }, () => node)),
      caller,
      { concurrency: "unbounded", discard: true }
    )
    let maxInWindow = 0
    for (const [from] of allowed) {
      const inside = allowed.filter(([sent, answered]) => sent >= from && answered < from + windowMillis).length
      maxInWindow = Math.max(maxInWindow, inside)
    }
    return { maxInWindow, allowed: allowed.length, denied }
  })
