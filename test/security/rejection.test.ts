/**
 * Typed rejection before any write: values JSON cannot carry faithfully, values over the size limit, keys and
 * tenant ids that are empty or too long, and invalid options. Each is a typed failure (or, for options, a
 * synchronous Error) and Redis sees nothing: its key count and its per-command call counters are unchanged.
 */
import { describe, expect, it } from "@effect/vitest"
import { Cause, Duration, Effect, Exit, Layer, Option, Schema } from "effect"
import {
  CacheValueInvalid,
  DistributedCache,
  explicitDegraded,
  Keyspace,
  localOnly,
  RateLimiter,
  RedisClient,
  ReplayGuard,
  strictDistributed
} from "effect-failclosed"
import { type RedisServer, redisServer } from "../support/RedisServer.js"

const clientLayer = (url: string) => RedisClient.layer({ url, commandTimeout: Duration.millis(500) })

/** what Redis has seen: the number of keys and, per command, the number of calls (our own probes excluded) */
const snapshot = (redis: RedisServer) =>
  Effect.promise(async () => {
    const [dbsize, stats] = await Promise.all([redis.command("DBSIZE"), redis.command("INFO", "commandstats")])
    const calls: Record<string, number> = {}
    for (const match of stats.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
      if (!["info", "dbsize", "command", "hello", "client"].includes(match[1]!)) calls[match[1]!] = Number(match[2])
    }
    return { dbsize: Number(dbsize), calls }
  })

const failureOf = <A, E>(exit: Exit.Exit<A, E>): E => {
  if (Exit.isSuccess(exit)) throw new Error(`expected a failure, got a success: ${String(exit.value)}`)
  const failure = Cause.failureOption(exit.cause)
  if (Option.isNone(failure)) throw new Error(`expected a typed failure, got ${Cause.pretty(exit.cause)}`)
  return failure.value
}

const Loose = Keyspace.make({
  name: "loose",
  key: Schema.String,
  value: Schema.Unknown,
  timeToLive: "1 minute",
  maxValueBytes: 1024,
  maxKeyBytes: 64,
  maxTenantLength: 16
})
const AnyValue = Keyspace.make({ name: "any", key: Schema.String, value: Schema.Any, timeToLive: "1 minute" })
const Dated = Keyspace.make({
  name: "dated",
  key: Schema.String,
  value: Schema.Struct({ at: Schema.Date }),
  timeToLive: "1 minute"
})

const circular = () => {
  const o: Record<string, unknown> = { a: 1 }
  o["self"] = { back: o }
  return o
}
const deep = (depth: number) => {
  let v: unknown = 1
  for (let i = 0; i < depth; i++) v = [v]
  return v
}
class Point {
  constructor(
    readonly x: number,
    readonly y: number
  ) {}
}

/** values that JSON.stringify would throw on, drop, turn into null or flatten */
const UNFAITHFUL: ReadonlyArray<readonly [string, unknown, RegExp]> = [
  ["a BigInt", 1n, /BigInt/],
  ["a nested BigInt", { amount: 10n }, /BigInt at \$\.amount/],
  ["a circular structure", circular(), /circular reference at \$\.self\.back/],
  ["a function", () => 1, /function/],
  ["a function property", { run: () => 1 }, /function at \$\.run/],
  ["a symbol", Symbol("s"), /symbol/],
  ["a symbol-keyed property", { [Symbol("k")]: 1 }, /symbol-keyed/],
  ["NaN", NaN, /NaN/],
  ["Infinity", Infinity, /Infinity/],
  ["-Infinity", -Infinity, /-Infinity/],
  ["NaN in an array", [1, NaN], /NaN at \$\[1\]/],
  ["a Date under Schema.Unknown", new Date(0), /instance of Date/],
  ["a Map", new Map([["a", 1]]), /instance of Map/],
  ["a class instance", new Point(1, 2), /instance of Point/],
  ["a boxed number", new Number(1), /instance of Number/],
  ["undefined", undefined, /undefined/],
  ["undefined in an array", [undefined], /undefined at \$\[0\]/],
  ["a hole in an array", [1, , 3], /undefined at \$\[1\]/],
  ["nesting 100,000 levels deep", deep(100_000), /nesting deeper than 1000 levels/],
  [
    "a getter that throws",
    Object.defineProperty({}, "x", {
      enumerable: true,
      get: () => {
        throw new Error("boom")
      }
    }),
    /threw/
  ]
]

describe("typed rejection before any write", () => {
  it.scopedLive("values JSON cannot carry faithfully fail with CacheValueInvalid and Redis sees nothing", () =>
    Effect.gen(function* () {
      const redis = yield* redisServer()
      const context = yield* Layer.build(strictDistributed().pipe(Layer.provide(clientLayer(redis.url))))
      const run = <A, E>(self: Effect.Effect<A, E, DistributedCache>) => Effect.exit(Effect.provide(self, context))
      expect(Exit.isSuccess(yield* run(Loose.set("warm", 1)))).toBe(true)
      const before = yield* snapshot(redis)
      let computed = 0
      for (const [what, value, reason] of UNFAITHFUL) {
        for (const attempt of [
          Loose.set("k", value),
          Loose.getOrCompute(
            "k",
            Effect.sync(() => {
              computed++
              return value
            })
          )
        ]) {
          const error = failureOf(yield* run(attempt as Effect.Effect<unknown, unknown, DistributedCache>))
          expect(error, what).toBeInstanceOf(CacheValueInvalid)
          expect((error as CacheValueInvalid).reason, what).toMatch(reason)
          expect((error as CacheValueInvalid).message, what).toMatch(/nothing was written/)
        }
      }
      // a Date where the Schema does not encode it: Schema.Any passes it through, the JSON check refuses it
      const date = failureOf(yield* run(AnyValue.set("k", new Date(0))))
      expect(date).toBeInstanceOf(CacheValueInvalid)
      expect(date.reason).toMatch(/instance of Date at \$ .*Schema\.Date/)
      // a Schema that encodes it refuses the one Date it cannot encode
      expect(failureOf(yield* run(Dated.set("k", { at: new Date(NaN) })))).toBeInstanceOf(CacheValueInvalid)
      // getOrCompute ran compute (that is how it got the value) but wrote nothing
      expect(computed).toBe(UNFAITHFUL.length)
      // the getOrCompute lookups are the only commands that reached Redis
      const after = yield* snapshot(redis)
      expect(after.dbsize).toBe(before.dbsize)
      expect({ ...after.calls, get: before.calls["get"] }).toEqual(before.calls)
      // and the Schema that does encode Dates round-trips one
      expect(Exit.isSuccess(yield* run(Dated.set("k", { at: new Date(0) })))).toBe(true)
      const read = yield* run(Dated.get("k"))
      expect(Exit.isSuccess(read) && Option.getOrThrow(read.value).value.at.getTime()).toBe(0)
    })
  )

  it.scopedLive("the size limit, empty and over-long tenant ids, and over-long keys are refused without contact", () =>
    Effect.gen(function* () {
      const redis = yield* redisServer()
      const context = yield* Layer.build(
        explicitDegraded({ cooldown: "1 hour" }).pipe(Layer.provide(clientLayer(redis.url)))
      )
      const run = <A, E>(self: Effect.Effect<A, E, DistributedCache>) => Effect.exit(Effect.provide(self, context))
      expect(Exit.isSuccess(yield* run(Loose.set("warm", 1)))).toBe(true)
      const before = yield* snapshot(redis)

      const rejected: ReadonlyArray<readonly [string, Effect.Effect<unknown, unknown, DistributedCache>, RegExp]> = [
        // maxValueBytes 1024 counts UTF-8 bytes of the JSON text: 1023 "x" + 2 quotes, 512 "é" (2 bytes each) + 2
        ["a value of 1025 bytes", Loose.set("k", "x".repeat(1023)), /larger than 1024 bytes/],
        ["a value of 1026 UTF-8 bytes", Loose.set("k", "é".repeat(512)), /larger than 1024 bytes/],
        ["an empty tenant id", Loose.set("k", 1, { tenant: "" }), /tenant id must be a non-empty string/],
        ["a tenant id of 17 characters", Loose.set("k", 1, { tenant: "t".repeat(17) }), /longer than 16/],
        ["a key of 65 bytes", Loose.set("k".repeat(63), 1), /key is larger than 64 bytes/],
        ["a negative timeToLive", Loose.set("k", 1, { timeToLive: -5 }), /timeToLive/],
        ["getOrCompute for an empty tenant", Loose.getOrCompute("k", Effect.succeed(1), { tenant: "" }), /empty/],
        ["a replay nonce that is empty", ReplayGuard.make({ name: "g", window: "1 minute" }).claim(""), /nonce/],
        [
          "a replay claim for an empty tenant",
          ReplayGuard.make({ name: "g", window: "1 minute" }).claim("n", { tenant: "" }),
          /tenant/
        ],
        [
          "a rate-limit cost of 0",
          RateLimiter.make({ name: "r", limit: 5, window: "1 minute", algorithm: "fixed-window" }).consume("s", {
            cost: 0
          }),
          /cost/
        ],
        [
          "a rate-limit call for an empty tenant",
          RateLimiter.make({ name: "r", limit: 5, window: "1 minute", algorithm: "fixed-window" }).consume("s", {
            tenant: ""
          }),
          /tenant/
        ]
      ]
      for (const [what, attempt, reason] of rejected) {
        const error = failureOf(yield* run(attempt)) as { _tag: string; reason: string }
        expect(["CacheValueInvalid", "RateLimitInputInvalid"], what).toContain(error._tag)
        expect(error.reason, what).toMatch(reason)
      }
      // reads, deletions and clears of a partition no entry can have are answered without contacting Redis
      expect(yield* run(Loose.get("k", { tenant: "" }))).toEqual(Exit.succeed(Option.none()))
      expect(yield* run(Loose.get("k".repeat(63), {}))).toEqual(Exit.succeed(Option.none()))
      expect(yield* run(Loose.invalidate("k", { tenant: "t".repeat(17) }))).toEqual(Exit.succeed(false))
      expect(yield* run(Loose.clear({ tenant: "" }))).toEqual(Exit.succeed(0))

      const after = yield* snapshot(redis)
      expect(after).toEqual(before)
      // nothing went to the node-local fallback either: the limits are checked before any mode decides anything
      const stats = yield* Effect.provide(
        Effect.flatMap(DistributedCache, (cache) => cache.stats),
        context
      )
      expect(stats).toMatchObject({ degraded: false, localEntries: 0, failures: 0 })

      // exactly at the limits everything is accepted
      for (const accepted of [
        Loose.set("k", "x".repeat(1022)),
        Loose.set("k", "é".repeat(511)),
        Loose.set("k", 1, { tenant: "t".repeat(16) }),
        Loose.set("k".repeat(62), 1)
      ]) {
        expect(yield* run(accepted)).toEqual(Exit.void)
      }
    })
  )
})

describe("invalid options are a synchronous Error at construction, before anything touches Redis", () => {
  const base = { name: "k", key: Schema.String, value: Schema.String, timeToLive: "1 minute" } as const

  it("Keyspace.make: negative or zero time to live, non-positive limits", () => {
    expect(() => Keyspace.make({ ...base, timeToLive: "-1 second" as never })).toThrow(/timeToLive/)
    expect(() => Keyspace.make({ ...base, timeToLive: -1 })).toThrow(/timeToLive/)
    expect(() => Keyspace.make({ ...base, timeToLive: 0 })).toThrow(/timeToLive/)
    expect(() => Keyspace.make({ ...base, maxValueBytes: 0 })).toThrow(/maxValueBytes/)
    expect(() => Keyspace.make({ ...base, maxKeyBytes: -1 })).toThrow(/maxKeyBytes/)
    expect(() => Keyspace.make({ ...base, maxTenantLength: 0 })).toThrow(/maxTenantLength/)
    expect(() => Keyspace.make({ ...base, maxTenantLength: 1.5 })).toThrow(/maxTenantLength/)
  })

  it("mode Layers: zero capacity, non-positive cooldown and startup timeout", () => {
    expect(() => localOnly({ capacity: 0 })).toThrow(/capacity/)
    expect(() => explicitDegraded({ localCapacity: 0 })).toThrow(/localCapacity/)
    expect(() => explicitDegraded({ localCapacity: -1 })).toThrow(/localCapacity/)
    expect(() => strictDistributed({ cooldown: 0 })).toThrow(/cooldown/)
    expect(() => strictDistributed({ cooldown: -1 })).toThrow(/cooldown/)
    expect(() => explicitDegraded({ startupTimeout: 0 })).toThrow(/startupTimeout/)
  })

  it("RateLimiter.make and ReplayGuard.make: zero limits and windows", () => {
    expect(() => RateLimiter.make({ name: "r", limit: 0, window: "1 minute", algorithm: "fixed-window" })).toThrow(
      /limit/
    )
    expect(() => RateLimiter.make({ name: "r", limit: 1, window: 0, algorithm: "token-bucket" })).toThrow(/window/)
    expect(() => ReplayGuard.make({ name: "g", window: 0 })).toThrow(/window/)
    expect(() => ReplayGuard.make({ name: "g", window: "-1 second" as never })).toThrow(/window/)
  })

  it("RedisClient.layer: non-positive timeouts throw when the Layer is made, and the message holds no secret", () => {
    const url = "redis://user:S3cret-pass@127.0.0.1:1"
    for (const bad of [
      { commandTimeout: 0 },
      { commandTimeout: -1 },
      { connectTimeout: 0 },
      { startupTimeout: -5 },
      { maxReconnectDelay: 0 }
    ]) {
      let thrown: unknown
      try {
        RedisClient.layer({ url, ...bad })
      } catch (error) {
        thrown = error
      }
      expect(thrown, JSON.stringify(bad)).toBeInstanceOf(Error)
      expect(String((thrown as Error).message)).toMatch(new RegExp(Object.keys(bad)[0]!))
      expect(String((thrown as Error).message)).not.toContain("S3cret-pass")
    }
  })
})
