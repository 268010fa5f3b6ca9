import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Either, Layer, LogLevel, Logger, TestClock } from "effect"
import { explicitDegraded, LocalOnly, RedisClient, ReplayGuard } from "effect-failclosed"
import { cli, expectFailsClosed, FAIL_FAST_COMMAND_TIMEOUT_MS, on, strictNode } from "./support/nodes.js"
import { redisServer } from "./support/RedisServer.js"

const COMMAND_TIMEOUT_MS = FAIL_FAST_COMMAND_TIMEOUT_MS

/** security events are expected in these tests; keep the output readable */
const quiet = Logger.withMinimumLogLevel(LogLevel.Error)

describe("ReplayGuard options", () => {
  it("rejects invalid options synchronously", () => {
    expect(() => ReplayGuard.make({ name: "hooks", window: "5 minutes" })).not.toThrow()
    const cases: Array<[Partial<ReplayGuard.ReplayGuardOptions>, RegExp]> = [
      [{ name: "" }, /name must be a string/],
      [{ window: 0 }, /window must be at least 1 millisecond/],
      [{ window: "-1 second" as never }, /window must be/],
      [{ window: Duration.infinity }, /window must be a finite duration/],
      [{ maxNonceLength: 0 }, /maxNonceLength must be a positive integer/],
      [{ maxTenantLength: 1.5 }, /maxTenantLength must be a positive integer/]
    ]
    for (const [override, message] of cases) {
      expect(() => ReplayGuard.make({ name: "hooks", window: "5 minutes", ...override })).toThrow(message)
    }
  })
})

describe("ReplayGuard across two nodes sharing one Redis", () => {
  it.scopedLive("the same nonce claimed by 2 × 64 concurrent callers succeeds exactly once", () =>
    Effect.gen(function* () {
      const redis = yield* redisServer()
      const nodes = [yield* strictNode(redis.url), yield* strictNode(redis.url)]
      const guard = ReplayGuard.make({ name: "webhooks", window: "1 minute" })
      for (const nonce of ["evt_1", "evt_2", "evt_3"]) {
        const outcomes = yield* Effect.forEach(
          nodes.flatMap((node) => Array.from({ length: 64 }, () => node)),
          (node) => Effect.either(on(node)(guard.claim(nonce))),
          { concurrency: "unbounded" }
        )
        const won = outcomes.filter(Either.isRight)
        expect(won).toHaveLength(1)
        expect(won[0]!.right).toEqual({ backend: "redis", degraded: false })
        const lost = outcomes.filter(Either.isLeft).map((e) => e.left._tag)
        expect(lost).toEqual(Array.from({ length: 127 }, () => "ReplayDetected"))
      }
      // distinct nonces never block each other
      const distinct = yield* Effect.forEach(
        Array.from({ length: 128 }, (_, i) => i),
        (i) => Effect.either(on(nodes[i % 2]!)(guard.claim(`evt_distinct_${i}`))),
        { concurrency: "unbounded" }
      )
      expect(distinct.filter(Either.isRight)).toHaveLength(128)
    })
  )

  it.scopedLive("a claim is remembered for the window (SET NX PX), then the nonce can be claimed again", () =>
    Effect.gen(function* () {
      const redis = yield* redisServer()
      const [a, b] = [on(yield* strictNode(redis.url)), on(yield* strictNode(redis.url))]
      // long enough for the redis-cli calls below on a busy machine
      const guard = ReplayGuard.make({ name: "short", window: "3 seconds" })
      yield* a(guard.claim("n-1"))
      const keys = (yield* cli(redis, "--scan")).split("\n").filter((k) => k !== "")
      expect(keys).toHaveLength(1)
      expect(keys[0]).toMatch(/^fc:\{g:[A-Za-z0-9._~-]+:-:[A-Za-z0-9_-]{24}\}$/)
      expect(keys[0]).not.toContain("n-1")
      const ttl = Number(yield* cli(redis, "PTTL", keys[0]!))
      expect(ttl).toBeGreaterThan(0)
      expect(ttl).toBeLessThanOrEqual(3_000)
      expect((yield* Effect.flip(b(guard.claim("n-1"))))._tag).toBe("ReplayDetected")
      yield* Effect.sleep(Duration.millis(ttl + 50))
      expect(yield* b(guard.claim("n-1"))).toEqual({ backend: "redis", degraded: false })
      expect((yield* Effect.flip(a(guard.claim("n-1"))))._tag).toBe("ReplayDetected")
    })
  )

  it.scopedLive("tenants and guards have separate nonce spaces", () =>
    Effect.gen(function* () {
      const redis = yield* redisServer()
      const node = on(yield* strictNode(redis.url))
      const guard = ReplayGuard.make({ name: "hooks", window: "1 minute" })
      const other = ReplayGuard.make({ name: "hooks2", window: "1 minute" })
      yield* node(guard.claim("same", { tenant: "acme" }))
      expect((yield* Effect.flip(node(guard.claim("same", { tenant: "acme" }))))._tag).toBe("ReplayDetected")
      for (const tenant of [undefined, "globex", "acme:", "-", "acme}", "\udc00"]) {
        yield* node(guard.claim("same", { tenant }))
      }
      yield* node(other.claim("same", { tenant: "acme" }))
      expect(yield* cli(redis, "DBSIZE")).toBe("8")
    })
  )
})

describe("ReplayGuard fails closed", () => {
  it.scopedLive("strict claim fails with CacheBackendUnavailable within commandTimeout + 100 ms", () =>
    Effect.gen(function* () {
      for (const outage of ["kill", "pause"] as const) {
        const redis = yield* redisServer()
        const nodes = [
          yield* strictNode(redis.url, COMMAND_TIMEOUT_MS),
          yield* strictNode(redis.url, COMMAND_TIMEOUT_MS)
        ]
        const guard = ReplayGuard.make({ name: "down", window: "1 minute" })
        yield* on(nodes[0]!)(guard.claim("before"))
        if (outage === "kill") yield* Effect.promise(() => redis.kill())
        else redis.pause()
        for (const node of nodes) {
          for (const nonce of ["fresh-1", "fresh-2", "before"]) {
            yield* expectFailsClosed(node, guard.claim(nonce), `${outage} ${nonce}`)
          }
        }
        yield* Effect.promise(() => redis.stop())
      }
    }).pipe(quiet)
  )

  it.scopedLive("an empty or oversized nonce or tenant fails with CacheValueInvalid before Redis is contacted", () =>
    Effect.gen(function* () {
      const redis = yield* redisServer()
      const node = on(yield* strictNode(redis.url))
      const guard = ReplayGuard.make({ name: "input", window: "1 minute", maxNonceLength: 32, maxTenantLength: 8 })
      yield* Effect.promise(() => redis.kill())
      const cases: Array<[string, string | undefined, RegExp]> = [
        ["", undefined, /nonce must be a non-empty string/],
        ["n".repeat(33), undefined, /nonce is longer than 32/],
        ["ok", "", /tenant id must be a non-empty string/],
        ["ok", "secret-tenant", /tenant id is longer than 8/]
      ]
      for (const [nonce, tenant, reason] of cases) {
        const error = yield* Effect.flip(node(guard.claim(nonce, { tenant })))
        expect(error._tag).toBe("CacheValueInvalid")
        expect(error.message).toMatch(reason)
        expect(error.message).not.toContain("secret")
      }
      expect((yield* Effect.flip(node(guard.claim("n".repeat(32)))))._tag).toBe("CacheBackendUnavailable")
    }).pipe(quiet)
  )

  it.scopedLive("ExplicitDegraded claims node-locally while Redis is down, marked degraded", () =>
    Effect.gen(function* () {
      const redis = yield* redisServer()
      const node = on(
        yield* Layer.build(
          explicitDegraded({ cooldown: "5 seconds" }).pipe(
            Layer.provide(RedisClient.layer({ url: redis.url, commandTimeout: Duration.millis(COMMAND_TIMEOUT_MS) }))
          )
        )
      )
      const guard = ReplayGuard.make({ name: "deg", window: "1 minute" })
      expect(yield* node(guard.claim("a"))).toEqual({ backend: "redis", degraded: false })
      yield* Effect.promise(() => redis.kill())
      expect(yield* node(guard.claim("b"))).toEqual({ backend: "local_degraded", degraded: true })
      expect((yield* Effect.flip(node(guard.claim("b"))))._tag).toBe("ReplayDetected")
    }).pipe(quiet)
  )
})

describe("ReplayGuard in memory (LocalOnly, TestClock)", () => {
  it.effect("a nonce is refused for exactly the window, then accepted again", () =>
    Effect.gen(function* () {
      const guard = ReplayGuard.make({ name: "mem", window: "10 minutes" })
      expect(yield* guard.claim("x", { tenant: "t" })).toEqual({ backend: "local", degraded: false })
      yield* TestClock.adjust("9 minutes")
      const replay = yield* Effect.flip(guard.claim("x", { tenant: "t" }))
      expect(replay._tag).toBe("ReplayDetected")
      expect(replay._tag === "ReplayDetected" && replay.guard).toBe("mem")
      yield* guard.claim("x", { tenant: "u" })
      yield* TestClock.adjust(Duration.subtract(Duration.minutes(1), Duration.millis(1)))
      expect((yield* Effect.flip(guard.claim("x", { tenant: "t" })))._tag).toBe("ReplayDetected")
      yield* TestClock.adjust("1 millis")
      yield* guard.claim("x", { tenant: "t" })
    }).pipe(Effect.provide(LocalOnly))
  )
})
