/**
 * The node-local store, as LocalOnly's memory and as ExplicitDegraded's fallback: LRU capacity, TTL driven by
 * Effect's Clock (TestClock here), and values no caller can mutate.
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Layer, Option, Schema, TestClock } from "effect"
import { DistributedCache, explicitDegraded, Keyspace, localOnly, RedisClient } from "effect-failclosed"
import { redisServer } from "./support/RedisServer.js"

type Run = <A, E>(self: Effect.Effect<A, E, DistributedCache>) => Effect.Effect<A, E>

const withCache = (layer: Layer.Layer<DistributedCache>) =>
  Effect.map(
    Layer.build(layer),
    (context): Run =>
      (self) =>
        Effect.provide(self, context)
  )

/**
 * ExplicitDegraded over a Redis that is down from the start: its fallback serves everything. The breaker's cooldown
 * runs on the TestClock too, so it stays degraded however far the test moves the clock (a probe after the cooldown
 * fails at once: nothing listens on the port).
 */
const degradedFallback = (localCapacity: number) =>
  Effect.gen(function* () {
    const redis = yield* redisServer()
    yield* Effect.promise(() => redis.kill())
    return yield* withCache(
      explicitDegraded({ localCapacity, cooldown: "1 hour" }).pipe(
        Layer.provide(RedisClient.layer({ url: redis.url, startupTimeout: Duration.millis(100) }))
      )
    )
  })

const stores = {
  LocalOnly: (capacity: number) => withCache(localOnly({ capacity })),
  "ExplicitDegraded fallback": degradedFallback
}
const marksOf = { LocalOnly: "local", "ExplicitDegraded fallback": "local_degraded" } as const

const Items = Keyspace.make({
  name: "items",
  key: Schema.String,
  value: Schema.Struct({ n: Schema.Number, nested: Schema.Struct({ xs: Schema.Array(Schema.Number) }) }),
  timeToLive: "1 minute"
})
interface Mutable {
  n: number
  nested: { xs: Array<number> }
}
const item = (n: number) => ({ n, nested: { xs: [n] } })
const valueOf = <A>(o: Option.Option<{ readonly value: A }>) => Option.map(o, (c) => c.value)

describe("memory store", () => {
  for (const [name, make] of Object.entries(stores)) {
    const backend = marksOf[name as keyof typeof marksOf]

    it.scoped(`${name}: holds at most its capacity, evicting the least recently used entry`, () =>
      Effect.gen(function* () {
        const run = yield* make(3)
        for (const k of ["a", "b", "c"]) yield* run(Items.set(k, item(1)))
        // reading "a" makes "b" the least recently used
        expect(Option.isSome(yield* run(Items.get("a")))).toBe(true)
        yield* run(Items.set("d", item(4)))
        expect(yield* run(Items.get("b"))).toEqual(Option.none())
        for (const k of ["a", "c", "d"]) expect(Option.isSome(yield* run(Items.get(k))), k).toBe(true)
        // overwriting an entry does not evict another one, and makes it the most recent
        yield* run(Items.set("c", item(5)))
        for (const k of ["a", "c", "d"]) expect(Option.isSome(yield* run(Items.get(k))), k).toBe(true)
        yield* run(Items.set("e", item(6)))
        expect(yield* run(Items.get("a"))).toEqual(Option.none())
        expect(valueOf(yield* run(Items.get("c")))).toEqual(Option.some(item(5)))
        const stats = yield* run(Effect.flatMap(DistributedCache, (c) => c.stats))
        expect(stats.localEntries).toBe(3)
        expect(stats.backend).toBe(backend)
      })
    )

    it.scoped(`${name}: entries expire by Effect's Clock`, () =>
      Effect.gen(function* () {
        const run = yield* make(100)
        yield* run(Items.set("default", item(1)))
        yield* run(Items.set("short", item(2), { timeToLive: "10 seconds" }))
        yield* run(Items.set("forever", item(3), { timeToLive: Duration.infinity }))
        yield* TestClock.adjust("9999 millis")
        expect(Option.isSome(yield* run(Items.get("short")))).toBe(true)
        yield* TestClock.adjust("1 millis")
        expect(yield* run(Items.get("short"))).toEqual(Option.none())
        expect(Option.isSome(yield* run(Items.get("default")))).toBe(true)
        yield* TestClock.adjust("50 seconds")
        expect(yield* run(Items.get("default"))).toEqual(Option.none())
        yield* TestClock.adjust(Duration.days(1000))
        expect(yield* run(Items.get("forever"))).toEqual(
          Option.some({ value: item(3), backend, degraded: backend === "local_degraded", near: false, stale: false })
        )
        // an expired entry is not there to delete
        yield* run(Items.set("gone", item(4), { timeToLive: "1 second" }))
        yield* TestClock.adjust("1 second")
        if (name === "LocalOnly") {
          expect(yield* run(Items.invalidate("gone"))).toBe(false)
          yield* run(Items.set("x", item(5), { timeToLive: "1 second" }))
          yield* TestClock.adjust("2 seconds")
          // only "forever" was still alive
          expect(yield* run(Items.clear())).toBe(1)
        }
      })
    )

    it.scoped(`${name}: mutating a value passed to set or returned by get does not change what is stored`, () =>
      Effect.gen(function* () {
        const run = yield* make(100)
        const written = item(1) as Mutable
        yield* run(Items.set("k", written))
        written.n = 2
        written.nested.xs.push(2)
        const first = yield* run(Items.get("k"))
        expect(valueOf(first)).toEqual(Option.some(item(1)))
        const read = Option.getOrThrow(first).value as Mutable
        // a value read is deeply frozen in every mode
        expect(() => (read.n = 3)).toThrow(TypeError)
        expect(() => read.nested.xs.push(3)).toThrow(TypeError)
        const second = yield* run(Items.get("k"))
        expect(valueOf(second)).toEqual(Option.some(item(1)))
        if (name === "LocalOnly") {
          // LocalOnly decodes an entry once and shares the frozen value between its readers
          expect(Option.getOrThrow(second).value).toBe(read)
        } else {
          expect(Option.getOrThrow(second).value).not.toBe(read)
        }
        // getOrCompute's result is no alias of the stored value either
        const computed = (yield* run(Items.getOrCompute("c", Effect.succeed(item(7))))).value as Mutable
        computed.nested.xs.push(8)
        expect(valueOf(yield* run(Items.get("c")))).toEqual(Option.some(item(7)))
      })
    )
  }

  it.effect("LocalOnly: the low-level API counts hits and misses and deletes by prefix", () =>
    Effect.gen(function* () {
      const cache = yield* DistributedCache
      expect(yield* cache.get("p:a")).toEqual({
        value: undefined,
        backend: "local",
        degraded: false,
        near: false,
        stale: false
      })
      yield* cache.set("p:a", "1", undefined)
      yield* cache.set("p:b", "2", 1_000)
      yield* cache.set("q:a", "3", undefined)
      expect(yield* cache.get("p:a")).toEqual({
        value: "1",
        backend: "local",
        degraded: false,
        near: false,
        stale: false
      })
      expect(yield* cache.stats).toMatchObject({ mode: "LocalOnly", hits: 1, misses: 1, hitRate: 0.5 })
      expect(yield* cache.invalidate("p:a")).toBe(true)
      expect(yield* cache.invalidate("p:a")).toBe(false)
      expect(yield* cache.clear("p:")).toBe(1)
      expect((yield* cache.get("q:a")).value).toBe("3")
      expect(yield* cache.claim("n", 1_000)).toEqual({
        value: true,
        backend: "local",
        degraded: false,
        near: false,
        stale: false
      })
      expect((yield* cache.claim("n", 1_000)).value).toBe(false)
      yield* TestClock.adjust("1 second")
      expect((yield* cache.claim("n", 1_000)).value).toBe(true)
    }).pipe(Effect.provide(localOnly()))
  )
})
