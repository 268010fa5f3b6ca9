import { describe, expect, it } from "@effect/vitest"
import { Cause, Deferred, Duration, Effect, Exit, Fiber, Layer, Option, Schema, type Scope } from "effect"
import {
  CacheEntryInvalid,
  CacheValueInvalid,
  type DistributedCache,
  Keyspace,
  localOnly,
  RedisClient,
  strictDistributed
} from "effect-failclosed"
import { type RedisServer, redisServer } from "./support/RedisServer.js"

type Run = <A, E>(self: Effect.Effect<A, E, DistributedCache>) => Effect.Effect<A, E>

interface Backend {
  readonly run: Run
  /** the Redis server behind the cache, if any */
  readonly redis: RedisServer | undefined
  readonly backend: "local" | "redis"
}

const clientLayer = (url: string) => RedisClient.layer({ url, commandTimeout: Duration.millis(500) })

const withCache = (layer: Layer.Layer<DistributedCache, unknown>) =>
  Effect.map(
    Layer.build(layer),
    (context): Run =>
      (self) =>
        Effect.provide(self, context)
  )

const backends: Record<"LocalOnly" | "StrictDistributed", Effect.Effect<Backend, unknown, Scope.Scope>> = {
  LocalOnly: Effect.map(withCache(localOnly()), (run) => ({ run, redis: undefined, backend: "local" }) as const),
  StrictDistributed: Effect.gen(function* () {
    const redis = yield* redisServer()
    const run = yield* withCache(strictDistributed().pipe(Layer.provide(clientLayer(redis.url))))
    return { run, redis, backend: "redis" } as const
  })
}

const Items = Keyspace.make({
  name: "items",
  key: Schema.String,
  value: Schema.Struct({ n: Schema.Number }),
  timeToLive: "1 minute"
})

const cli = (redis: RedisServer, ...args: Array<string>) => Effect.promise(() => redis.command(...args))
const scan = (redis: RedisServer) =>
  Effect.map(cli(redis, "--scan"), (out) => out.split("\n").filter((key) => key !== ""))

const failureOf = <A, E>(exit: Exit.Exit<A, E>): E => {
  if (Exit.isSuccess(exit)) throw new Error(`expected a failure, got ${JSON.stringify(exit.value)}`)
  const failure = Cause.failureOption(exit.cause)
  if (Option.isNone(failure)) throw new Error(`expected a typed failure, got ${Cause.pretty(exit.cause)}`)
  return failure.value
}

/** tenant ids that are glob patterns, separators, escapes, unicode, blanks and malformed UTF-16 */
const TENANTS: ReadonlyArray<string | undefined> = [
  undefined,
  "*",
  "a",
  "b",
  "a:b",
  "a:b:c",
  "[ab]",
  "[^a]",
  "?",
  "\\",
  "a\\",
  "a*",
  "%",
  "-",
  "t",
  "a b",
  " ",
  "Ünïcödé 租户 🙂",
  "\ud800",
  "\udc00",
  "\ufffd",
  "\ud83d",
  "\ud83d\ude42"
]
const label = (tenant: string | undefined) => JSON.stringify(tenant) ?? "no tenant"

describe("Keyspace tenants", () => {
  for (const [mode, make] of Object.entries(backends)) {
    it.scopedLive(`${mode}: no tenant id reads, invalidates or clears another tenant's entries`, () =>
      Effect.gen(function* () {
        const { run } = yield* make
        for (const [i, tenant] of TENANTS.entries()) {
          yield* run(Items.set("k", { n: i }, { tenant }))
          yield* run(Items.set("other", { n: 100 + i }, { tenant }))
        }
        for (const [i, tenant] of TENANTS.entries()) {
          expect(
            Option.map(yield* run(Items.get("k", { tenant })), (c) => c.value.n),
            label(tenant)
          ).toEqual(Option.some(i))
        }
        // invalidating one tenant's entry leaves the same key of every other tenant alone
        expect(yield* run(Items.invalidate("other", { tenant: "*" }))).toBe(true)
        expect(yield* run(Items.invalidate("other", { tenant: "*" }))).toBe(false)
        for (const [i, tenant] of TENANTS.entries()) {
          const other = yield* run(Items.get("other", { tenant }))
          expect(
            Option.map(other, (c) => c.value.n),
            label(tenant)
          ).toEqual(tenant === "*" ? Option.none() : Option.some(100 + i))
        }
        yield* run(Items.set("other", { n: -1 }, { tenant: "*" }))
        // clear tenant after tenant: each clear deletes exactly that tenant's two entries
        for (const [i, tenant] of TENANTS.entries()) {
          expect(yield* run(Items.clear({ tenant })), label(tenant)).toBe(2)
          for (const [j, other] of TENANTS.entries()) {
            const k = yield* run(Items.get("k", { tenant: other }))
            expect(Option.isSome(k), `${label(other)} after clearing ${label(tenant)}`).toBe(j > i)
          }
        }
      })
    )

    it.scopedLive(`${mode}: clear({ allTenants: true }) clears every tenant of this keyspace and nothing else`, () =>
      Effect.gen(function* () {
        const { run } = yield* make
        const others = ["item", "itemss", "items:", "*", "items*", "?tems", "[i]tems", "Items"].map((name) =>
          Keyspace.make({
            name,
            key: Schema.String,
            value: Schema.Struct({ n: Schema.Number }),
            timeToLive: "1 minute"
          })
        )
        for (const tenant of TENANTS) {
          yield* run(Items.set("k", { n: 1 }, { tenant }))
          for (const keyspace of others) yield* run(keyspace.set("k", { n: 2 }, { tenant }))
        }
        expect(yield* run(Items.clear({ allTenants: true }))).toBe(TENANTS.length)
        for (const tenant of TENANTS) {
          expect(yield* run(Items.get("k", { tenant }))).toEqual(Option.none())
          for (const keyspace of others) {
            expect(Option.isSome(yield* run(keyspace.get("k", { tenant }))), `${keyspace.name} ${label(tenant)}`).toBe(
              true
            )
          }
        }
        // a keyspace named like a glob pattern clears only itself too
        expect(yield* run(others[3]!.clear({ allTenants: true }))).toBe(TENANTS.length)
        expect(Option.isSome(yield* run(others[4]!.get("k")))).toBe(true)
        // tenant and allTenants together is a programmer error
        const both = yield* Effect.exit(run(Items.clear({ allTenants: true, tenant: "a" })))
        expect(Exit.isFailure(both) && Cause.isDie(both.cause)).toBe(true)
      })
    )
  }

  it.scopedLive("StrictDistributed: clear never touches a cache with another key prefix on the same Redis", () =>
    Effect.gen(function* () {
      const redis = yield* redisServer()
      const client = Layer.succeedContext(yield* Layer.build(clientLayer(redis.url)))
      const caches = yield* Effect.forEach(["fc", "f", "fc2", "fc.x"], (keyPrefix) =>
        withCache(strictDistributed({ keyPrefix }).pipe(Layer.provide(client)))
      )
      for (const run of caches) yield* run(Items.set("k", { n: 1 }, { tenant: "a" }))
      expect(yield* caches[0]!(Items.clear({ allTenants: true }))).toBe(1)
      expect(yield* caches[0]!(Items.get("k", { tenant: "a" }))).toEqual(Option.none())
      for (const run of caches.slice(1)) expect(Option.isSome(yield* run(Items.get("k", { tenant: "a" })))).toBe(true)
      expect(yield* scan(redis)).toHaveLength(3)
    })
  )

  it.scopedLive("StrictDistributed: clear deletes thousands of entries with SCAN in batches, never KEYS", () =>
    Effect.gen(function* () {
      const { redis, run } = yield* backends.StrictDistributed
      const count = 1_200
      yield* Effect.forEach(
        Array.from({ length: count }),
        (_, i) => run(Items.set(`k${i}`, { n: i }, { tenant: "a" })),
        {
          concurrency: 50
        }
      )
      yield* run(Items.set("k", { n: 1 }, { tenant: "b" }))
      expect(yield* run(Items.clear({ tenant: "a" }))).toBe(count)
      const stats = yield* cli(redis!, "INFO", "commandstats")
      expect(stats).not.toContain("cmdstat_keys:")
      const scans = Number(/cmdstat_scan:calls=(\d+),/.exec(stats)?.[1] ?? 0)
      expect(scans).toBeGreaterThan(1)
      expect(yield* scan(redis!)).toHaveLength(1)
    })
  )

  it.scopedLive("keys in Redis carry the tenant id as its segment and the key only as a hash", () =>
    Effect.gen(function* () {
      const { redis, run } = yield* backends.StrictDistributed
      yield* run(Items.set("user@example.com", { n: 1 }, { tenant: "acme-tenant" }))
      const [key, ...rest] = yield* scan(redis!)
      expect(rest).toEqual([])
      // a tenant id of [A-Za-z0-9._-] is written as it is (0.2.0 layout), any other as ~ and base64url
      expect(key).toMatch(/^fc:k:items:acme-tenant:[A-Za-z0-9_-]{24}$/)
      expect(key).not.toContain("example")
      yield* run(Items.set("user@example.com", { n: 1 }, { tenant: "acme tenant" }))
      const keys = yield* scan(redis!)
      expect(keys.filter((k) => k !== key)).toEqual([
        expect.stringMatching(
          new RegExp(`^fc:k:items:~${Buffer.from("acme tenant", "utf16le").toString("base64url")}:[A-Za-z0-9_-]{24}$`)
        )
      ])
    })
  )
})

describe("Keyspace corrupt entries", () => {
  const corrupt = ["not json {", "", "null", "[]", "1", '"text"', '{"n":"1"}', '{"m":1}', '{"n":null}']
  it.scopedLive("an entry that does not decode fails with CacheEntryInvalid, never returns wrong-typed data", () =>
    Effect.gen(function* () {
      const { redis, run } = yield* backends.StrictDistributed
      yield* run(Items.set("k", { n: 1 }, { tenant: "secret-tenant-id" }))
      const [key] = yield* scan(redis!)
      for (const garbage of corrupt) {
        yield* cli(redis!, "SET", key!, garbage)
        const error = failureOf(yield* Effect.exit(run(Items.get("k", { tenant: "secret-tenant-id" }))))
        expect(error, garbage).toBeInstanceOf(CacheEntryInvalid)
        const e = error as CacheEntryInvalid
        expect(e.keyspace).toBe("items")
        expect(e.message).not.toContain("secret-tenant-id")
        expect(JSON.stringify(e)).not.toContain("secret-tenant-id")
      }
      // extra properties are not an error: the Schema decides what a value is
      yield* cli(redis!, "SET", key!, '{"n":2,"extra":true}')
      expect(yield* run(Items.get("k", { tenant: "secret-tenant-id" }))).toEqual(
        Option.some({ value: { n: 2 }, backend: "redis", degraded: false, near: false, stale: false })
      )
    })
  )

  it.scopedLive("getOrCompute recomputes and overwrites a corrupt entry", () =>
    Effect.gen(function* () {
      const { redis, run } = yield* backends.StrictDistributed
      yield* run(Items.set("k", { n: 1 }))
      const [key] = yield* scan(redis!)
      yield* cli(redis!, "SET", key!, '{"n":"one"}')
      const computed = yield* run(Items.getOrCompute("k", Effect.succeed({ n: 5 })))
      expect(computed).toEqual({ value: { n: 5 }, backend: "redis", degraded: false, near: false, stale: false })
      expect(yield* cli(redis!, "GET", key!)).toBe('{"n":5}')
    })
  )
})

describe("Keyspace keys", () => {
  const Canonical = Keyspace.make({
    name: "canonical",
    key: Schema.Record({ key: Schema.String, value: Schema.Unknown }),
    value: Schema.String,
    timeToLive: "1 minute"
  })
  const Mixed = Keyspace.make({
    name: "mixed",
    key: Schema.Union(Schema.String, Schema.Number, Schema.Array(Schema.Number)),
    value: Schema.String,
    timeToLive: "1 minute"
  })

  for (const [mode, make] of Object.entries(backends)) {
    it.scopedLive(`${mode}: structurally equal keys share one entry whatever the property order`, () =>
      Effect.gen(function* () {
        const { run } = yield* make
        yield* run(Canonical.set({ a: 1, b: { c: 2, d: [1, { e: 3, f: 4 }] }, g: undefined }, "one"))
        const reordered = yield* run(Canonical.get({ b: { d: [1, { f: 4, e: 3 }], c: 2 }, a: 1 }))
        expect(Option.map(reordered, (c) => c.value)).toEqual(Option.some("one"))
        // array order and values do matter
        expect(yield* run(Canonical.get({ a: 1, b: { c: 2, d: [{ e: 3, f: 4 }, 1] } }))).toEqual(Option.none())
        expect(yield* run(Canonical.get({ a: 1, b: { c: 2, d: [1, { e: 3, f: 5 }] } }))).toEqual(Option.none())
        expect(yield* run(Canonical.get({ a: "1", b: { c: 2, d: [1, { e: 3, f: 4 }] } }))).toEqual(Option.none())
        // keys of different types never collide
        yield* run(Mixed.set("1", "string"))
        yield* run(Mixed.set(1, "number"))
        yield* run(Mixed.set([1], "array"))
        expect(Option.map(yield* run(Mixed.get("1")), (c) => c.value)).toEqual(Option.some("string"))
        expect(Option.map(yield* run(Mixed.get(1)), (c) => c.value)).toEqual(Option.some("number"))
        expect(Option.map(yield* run(Mixed.get([1])), (c) => c.value)).toEqual(Option.some("array"))
        // a key JSON cannot carry is rejected on write and a miss on read
        const nan = failureOf(yield* Effect.exit(run(Mixed.set(Number.NaN, "nan"))))
        expect(nan).toBeInstanceOf(CacheValueInvalid)
        expect(yield* run(Mixed.get(Number.NaN))).toEqual(Option.none())
      })
    )
  }
})

describe("Keyspace values", () => {
  for (const mode of ["LocalOnly", "StrictDistributed"] as const) {
    it.scopedLive(`${mode}: a value read is deeply frozen, by get and by a getOrCompute hit`, () =>
      Effect.gen(function* () {
        const { run } = yield* backends[mode]
        const Nested = Keyspace.make({
          name: "frozen",
          key: Schema.String,
          value: Schema.Struct({ xs: Schema.Array(Schema.Struct({ n: Schema.Number })), when: Schema.Date }),
          timeToLive: "1 minute"
        })
        yield* run(Nested.set("k", { xs: [{ n: 1 }], when: new Date(0) }))
        const read = Option.getOrThrow(yield* run(Nested.get("k"))).value
        const hit = (yield* run(Nested.getOrCompute("k", Effect.die("not a miss")))).value
        for (const value of [read, hit]) {
          expect(Object.isFrozen(value)).toBe(true)
          expect(Object.isFrozen(value.xs)).toBe(true)
          expect(Object.isFrozen(value.xs[0])).toBe(true)
          expect(Object.isFrozen(value.when)).toBe(true)
        }
      })
    )
  }

  const Anything = Keyspace.make({
    name: "anything",
    key: Schema.String,
    value: Schema.Unknown,
    timeToLive: "1 minute"
  })
  const Small = Keyspace.make({
    name: "small",
    key: Schema.String,
    value: Schema.String,
    timeToLive: "1 minute",
    maxValueBytes: 16
  })

  for (const [mode, make] of Object.entries(backends)) {
    it.scopedLive(`${mode}: a value JSON cannot carry faithfully is rejected and nothing is written`, () =>
      Effect.gen(function* () {
        const { run } = yield* make
        const cyclic: Record<string, unknown> = {}
        cyclic["self"] = cyclic
        const unfaithful: ReadonlyArray<unknown> = [
          Number.NaN,
          Number.POSITIVE_INFINITY,
          { a: [1, Number.NEGATIVE_INFINITY] },
          10n,
          () => 1,
          Symbol("s"),
          new Date(0),
          new Map(),
          [undefined],
          cyclic,
          undefined
        ]
        for (const value of unfaithful) {
          yield* run(Anything.set("k", "before"))
          const error = failureOf(yield* Effect.exit(run(Anything.set("k", value))))
          expect(error, String(typeof value)).toBeInstanceOf(CacheValueInvalid)
          expect(Option.map(yield* run(Anything.get("k")), (c) => c.value)).toEqual(Option.some("before"))
        }
        const tooBig = failureOf(yield* Effect.exit(run(Small.set("k", "x".repeat(20)))))
        expect((tooBig as CacheValueInvalid).reason).toMatch(/larger than 16 bytes/)
        expect(yield* run(Small.get("k"))).toEqual(Option.none())
        // an empty tenant id is rejected on write, a miss on read
        expect(failureOf(yield* Effect.exit(run(Small.set("k", "x", { tenant: "" }))))).toBeInstanceOf(
          CacheValueInvalid
        )
        expect(yield* run(Small.get("k", { tenant: "" }))).toEqual(Option.none())
      })
    )
  }

  it("rejects invalid options synchronously", () => {
    const valid = { name: "x", key: Schema.String, value: Schema.String, timeToLive: "1 minute" } as const
    expect(() => Keyspace.make(valid)).not.toThrow()
    expect(() => Keyspace.make({ ...valid, timeToLive: Duration.infinity })).not.toThrow()
    expect(() => Keyspace.make({ ...valid, name: "" })).toThrow(/name/)
    expect(() => Keyspace.make({ ...valid, name: "x".repeat(129) })).toThrow(/name/)
    expect(() => Keyspace.make({ ...valid, timeToLive: 0 })).toThrow(/timeToLive/)
    expect(() => Keyspace.make({ ...valid, timeToLive: "-1 second" as never })).toThrow(/timeToLive/)
    expect(() => Keyspace.make({ ...valid, maxValueBytes: 0 })).toThrow(/maxValueBytes/)
    expect(() => Keyspace.make({ ...valid, key: "string" as never })).toThrow(/Schemas/)
  })
})

describe("Keyspace TTL in Redis", () => {
  it.scopedLive("entries get a PX expiry: the keyspace default, a per-call override, none for an infinite one", () =>
    Effect.gen(function* () {
      const { redis, run } = yield* backends.StrictDistributed
      const pttl = (key: string) => Effect.map(cli(redis!, "PTTL", key), Number)
      yield* run(Items.set("default", { n: 1 }))
      const [defaultKey] = yield* scan(redis!)
      const defaultTtl = yield* pttl(defaultKey!)
      expect(defaultTtl).toBeGreaterThan(55_000)
      expect(defaultTtl).toBeLessThanOrEqual(60_000)
      yield* cli(redis!, "DEL", defaultKey!)

      // long enough for the redis-cli calls below on a busy machine
      yield* run(Items.set("short", { n: 1 }, { timeToLive: "2 seconds" }))
      const [shortKey] = yield* scan(redis!)
      const shortTtl = yield* pttl(shortKey!)
      expect(shortTtl).toBeGreaterThan(0)
      expect(shortTtl).toBeLessThanOrEqual(2_000)
      expect(Option.isSome(yield* run(Items.get("short")))).toBe(true)
      yield* Effect.sleep(Duration.millis(shortTtl + 100))
      expect(yield* run(Items.get("short"))).toEqual(Option.none())
      expect(yield* scan(redis!)).toEqual([])

      const Forever = Keyspace.make({ name: "forever", key: Schema.String, value: Schema.String, timeToLive: "1 hour" })
      yield* run(Forever.set("k", "v", { timeToLive: Duration.infinity }))
      const [foreverKey] = yield* scan(redis!)
      expect(yield* pttl(foreverKey!)).toBe(-1)
      // an invalid per-call TTL is rejected and nothing is written
      expect(failureOf(yield* Effect.exit(run(Forever.set("x", "v", { timeToLive: 0 }))))).toBeInstanceOf(
        CacheValueInvalid
      )
      expect(yield* scan(redis!)).toHaveLength(1)
    })
  )
})

describe("Keyspace getOrCompute", () => {
  for (const [mode, make] of Object.entries(backends)) {
    it.scopedLive(`${mode}: 50 concurrent misses for one key run compute once`, () =>
      Effect.gen(function* () {
        const { backend, run } = yield* make
        const gate = yield* Deferred.make<void>()
        let computations = 0
        const compute = Effect.suspend(() => {
          computations++
          return Effect.as(Deferred.await(gate), { n: 42 })
        })
        const fibers = yield* Effect.forEach(Array.from({ length: 50 }), () =>
          Effect.fork(run(Items.getOrCompute("k", compute)))
        )
        // every caller has had the time to look up, miss and join (or start) a computation
        yield* Effect.sleep("100 millis")
        expect(computations).toBe(1)
        yield* Deferred.succeed(gate, undefined)
        const results = yield* Fiber.joinAll(fibers)
        expect(computations).toBe(1)
        expect(results).toHaveLength(50)
        for (const result of results)
          expect(result).toEqual({ value: { n: 42 }, backend, degraded: false, near: false, stale: false })
        // stored: a later call is a hit
        expect(yield* run(Items.getOrCompute("k", Effect.die("not called")))).toEqual({
          value: { n: 42 },
          backend,
          degraded: false,
          near: false,
          stale: false
        })
      })
    )

    it.scopedLive(
      `${mode}: a failing compute is shared by the waiters, not cached, and a later call computes again`,
      () =>
        Effect.gen(function* () {
          const { backend, run } = yield* make
          const gate = yield* Deferred.make<void>()
          let computations = 0
          const failing = Effect.suspend(() => {
            computations++
            return Effect.zipRight(Deferred.await(gate), Effect.fail("boom" as const))
          })
          const fibers = yield* Effect.forEach(Array.from({ length: 10 }), () =>
            Effect.fork(Effect.exit(run(Items.getOrCompute("k", failing))))
          )
          yield* Effect.sleep("50 millis")
          yield* Deferred.succeed(gate, undefined)
          for (const exit of yield* Fiber.joinAll(fibers)) expect(failureOf(exit)).toBe("boom")
          expect(computations).toBe(1)
          expect(yield* run(Items.get("k"))).toEqual(Option.none())
          const computed = yield* run(
            Items.getOrCompute(
              "k",
              Effect.sync(() => ({ n: ++computations }))
            )
          )
          expect(computed).toEqual({ value: { n: 2 }, backend, degraded: false, near: false, stale: false })
          expect(Option.map(yield* run(Items.get("k")), (c) => c.value)).toEqual(Option.some({ n: 2 }))
        })
    )

    it.scopedLive(`${mode}: shouldCache false returns the value without storing it`, () =>
      Effect.gen(function* () {
        const { backend, run } = yield* make
        let computations = 0
        const compute = Effect.sync(() => ({ n: ++computations }))
        const options = { shouldCache: (v: { readonly n: number }) => v.n > 1 }
        expect(yield* run(Items.getOrCompute("k", compute, options))).toEqual({
          value: { n: 1 },
          backend,
          degraded: false,
          near: false,
          stale: false
        })
        expect(yield* run(Items.get("k"))).toEqual(Option.none())
        expect((yield* run(Items.getOrCompute("k", compute, options))).value).toEqual({ n: 2 })
        expect(Option.map(yield* run(Items.get("k")), (c) => c.value)).toEqual(Option.some({ n: 2 }))
        expect((yield* run(Items.getOrCompute("k", compute, options))).value).toEqual({ n: 2 })
        expect(computations).toBe(2)
      })
    )
  }

  it.scopedLive("two caches in one process never share a computation", () =>
    Effect.gen(function* () {
      const a = yield* withCache(localOnly())
      const b = yield* withCache(localOnly())
      const gate = yield* Deferred.make<void>()
      let computations = 0
      const compute = Effect.suspend(() => {
        computations++
        return Effect.as(Deferred.await(gate), { n: computations })
      })
      const fa = yield* Effect.fork(a(Items.getOrCompute("k", compute)))
      const fb = yield* Effect.fork(b(Items.getOrCompute("k", compute)))
      yield* Effect.sleep("20 millis")
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.joinAll([fa, fb])
      expect(computations).toBe(2)
      // each cache stored its own result
      expect(Option.isSome(yield* a(Items.get("k")))).toBe(true)
      expect(Option.isSome(yield* b(Items.get("k")))).toBe(true)
    })
  )
})
