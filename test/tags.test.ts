/**
 * Tags on real Redis (and LocalOnly): `set`/`getOrCompute` with `tags`, `invalidateTag`, adaptive time to live, and
 * `refreshAhead`. Each test says what it would catch.
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Exit, Layer, Option, Schema, TestClock } from "effect"
import type { Cached } from "effect-failclosed"
import { explicitDegraded, Keyspace, LocalOnly, RedisClient, strictDistributed } from "effect-failclosed"
import { cli, type Node, on, strictNode } from "./support/nodes.js"
import { redisServer } from "./support/RedisServer.js"
import { redisCluster } from "./support/RedisCluster.js"

const Value = Schema.Struct({ n: Schema.Number, org: Schema.Number })
type Value = typeof Value.Type
const Items = Keyspace.make({ name: "tagged", key: Schema.String, value: Value, timeToLive: "10 minutes" })
const Near = Keyspace.make({
  name: "tagged-near",
  key: Schema.String,
  value: Value,
  timeToLive: "10 minutes",
  nearCache: { capacity: 1000, maxStaleness: "300 millis" }
})

const valueOf = (o: Option.Option<Cached<Value>>) => (Option.isSome(o) ? o.value.value.n : undefined)
const nearOf = (o: Option.Option<Cached<Value>>) => Option.isSome(o) && o.value.near

/** until `f` holds (polling every millisecond), at most `ms` */
const until = (f: () => Effect.Effect<boolean, unknown>, ms: number, label: string) =>
  Effect.gen(function* () {
    const start = performance.now()
    while (!(yield* Effect.orElseSucceed(f(), () => false))) {
      if (performance.now() - start > ms) return yield* Effect.dieMessage(`${label}: not within ${ms} ms`)
      yield* Effect.sleep("1 millis")
    }
    return performance.now() - start
  })

/** the rules of tags, on whatever cache is provided */
const tagRules = Effect.gen(function* () {
  yield* Items.set("a", { n: 1, org: 7 }, { tenant: "acme", tags: ["org:7", "plan:pro"] })
  yield* Items.set("b", { n: 2, org: 8 }, { tenant: "acme", tags: ["org:8"] })
  yield* Items.set("a", { n: 3, org: 7 }, { tenant: "umbrella", tags: ["org:7"] })
  yield* Items.set("u", { n: 4, org: 7 }, { tenant: "acme" })
  expect(valueOf(yield* Items.get("a", { tenant: "acme" }))).toBe(1)

  yield* Items.invalidateTag("org:7", { tenant: "acme" })
  // catches: a tag check that is not done, or done against the wrong tag or tenant
  expect(valueOf(yield* Items.get("a", { tenant: "acme" }))).toBe(undefined)
  expect(valueOf(yield* Items.get("b", { tenant: "acme" }))).toBe(2)
  expect(valueOf(yield* Items.get("a", { tenant: "umbrella" }))).toBe(3)
  expect(valueOf(yield* Items.get("u", { tenant: "acme" }))).toBe(4)
  // catches: a permanent tombstone (an entry written after the invalidation must be visible)
  yield* Items.set("a", { n: 5, org: 7 }, { tenant: "acme", tags: ["org:7"] })
  expect(valueOf(yield* Items.get("a", { tenant: "acme" }))).toBe(5)
  // an entry carrying two tags goes with either
  yield* Items.set("c", { n: 6, org: 7 }, { tenant: "acme", tags: ["org:7", "plan:pro"] })
  yield* Items.invalidateTag("plan:pro", { tenant: "acme" })
  expect(valueOf(yield* Items.get("c", { tenant: "acme" }))).toBe(undefined)
  expect(valueOf(yield* Items.get("a", { tenant: "acme" }))).toBe(5)
})

describe("tags", () => {
  it.effect("LocalOnly: invalidateTag hides the tag's entries of one tenant, and only them; later writes show", () =>
    tagRules.pipe(Effect.provide(LocalOnly))
  )

  it.scoped("StrictDistributed on a redis-server: the same rules", () =>
    Effect.gen(function* () {
      const redis = yield* redisServer()
      const node = yield* strictNode(redis.url)
      yield* on(node)(tagRules)
      // catches: a stamp that is written into the entries' partition (clear and KeyLayout patterns would see it) or
      // outside its tenant's partition
      const keys = (yield* cli(redis, "--scan")).split("\n").sort()
      const stamps = keys.filter((k) => k.startsWith("fc:t:"))
      expect(stamps.length).toBeGreaterThan(0)
      expect(keys.filter((k) => !k.startsWith("fc:t:")).every((k) => !k.includes(":t:"))).toBe(true)
    })
  )

  it.scoped("a Redis Cluster: tags of entries in many slots", () =>
    Effect.gen(function* () {
      const cluster = yield* redisCluster()
      const node = yield* Layer.build(
        Layer.fresh(
          strictDistributed().pipe(
            Layer.provide(RedisClient.layerCluster({ nodes: cluster.nodes, commandTimeout: "3 seconds" }))
          )
        )
      )
      yield* on(node)(
        Effect.gen(function* () {
          // catches: stamps read with a multi-key command across slots (CROSSSLOT) or from the wrong node
          for (let i = 0; i < 30; i++) yield* Items.set(`k${i}`, { n: i, org: i % 2 }, { tags: [`t${i % 3}`, "all"] })
          yield* Items.invalidateTag("t1")
          const read = yield* Items.getMany(Array.from({ length: 30 }, (_, i) => `k${i}`))
          expect(read.map(valueOf)).toEqual(Array.from({ length: 30 }, (_, i) => (i % 3 === 1 ? undefined : i)))
          yield* Items.invalidateTag("all")
          const after = yield* Items.getMany(Array.from({ length: 30 }, (_, i) => `k${i}`))
          expect(after.every(Option.isNone)).toBe(true)
        })
      )
    })
  )

  it.scopedLive("a tag removal reaches another node's near cache", () =>
    Effect.gen(function* () {
      const redis = yield* redisServer()
      const a: Node = yield* strictNode(redis.url)
      const b: Node = yield* strictNode(redis.url)
      yield* on(a)(Near.set("x", { n: 1, org: 7 }, { tags: ["org:7"] }))
      // catches: a tagged entry never served near (the near hit of a tagged entry is the point of tracked stamps)
      yield* until(() => Effect.map(on(b)(Near.get("x")), nearOf), 3_000, "near hit of a tagged entry on B")
      yield* on(a)(Near.invalidateTag("org:7"))
      // catches: a near cache that keeps serving an entry whose tag another node removed
      const took = yield* until(
        () => Effect.map(on(b)(Near.get("x")), (o) => Option.isNone(o)),
        1_000,
        "B sees the tag removal"
      )
      expect(took).toBeLessThan(1_000)
      expect(valueOf(yield* on(b)(Near.get("x")))).toBe(undefined)
      // and B's own later write with the tag is visible on A
      yield* on(b)(Near.set("x", { n: 2, org: 7 }, { tags: ["org:7"] }))
      expect(valueOf(yield* on(a)(Near.get("x")))).toBe(2)
    })
  )

  it.scopedLive("invalidateTag fails closed with Redis down: StrictDistributed and ExplicitDegraded", () =>
    Effect.gen(function* () {
      const redis = yield* redisServer()
      const client = RedisClient.layer({ url: redis.url, commandTimeout: Duration.millis(200) })
      const strict: Node = yield* Layer.build(Layer.fresh(strictDistributed().pipe(Layer.provide(client))))
      const degraded: Node = yield* Layer.build(Layer.fresh(explicitDegraded().pipe(Layer.provide(client))))
      yield* on(strict)(Items.set("a", { n: 1, org: 7 }, { tags: ["org:7"] }))
      yield* Effect.promise(() => redis.kill())
      // catches: a deletion "done locally" (the degraded fallback) when Redis cannot confirm it
      for (const node of [strict, degraded]) {
        const exit = yield* Effect.exit(on(node)(Items.invalidateTag("org:7")))
        expect(Exit.isFailure(exit) && JSON.stringify(exit.cause)).toContain("CacheBackendUnavailable")
      }
      // a paused Redis too (the command times out)
      yield* Effect.promise(() => redis.restart())
      yield* Effect.sleep("300 millis")
      redis.pause()
      const paused = yield* Effect.exit(on(strict)(Items.invalidateTag("org:7")))
      redis.resume()
      expect(Exit.isFailure(paused) && JSON.stringify(paused.cause)).toContain("CacheBackendUnavailable")
    })
  )

  it.effect("bad tags are a typed error before anything is written", () =>
    Effect.gen(function* () {
      const bad = [[""], ["x".repeat(2000)], Array.from({ length: 65 }, (_, i) => `t${i}`), [7 as unknown as string]]
      for (const tags of bad) {
        const exit = yield* Effect.exit(Items.set("a", { n: 1, org: 1 }, { tags }))
        expect(Exit.isFailure(exit) && JSON.stringify(exit.cause)).toContain('"field":"tags"')
      }
      // catches: an input check after the write
      expect(Option.isNone(yield* Items.get("a"))).toBe(true)
      const tagExit = yield* Effect.exit(Items.invalidateTag(""))
      expect(Exit.isFailure(tagExit) && JSON.stringify(tagExit.cause)).toContain("CacheValueInvalid")
      const tenantExit = yield* Effect.exit(Items.invalidateTag("t", { tenant: "" }))
      expect(Exit.isFailure(tenantExit) && JSON.stringify(tenantExit.cause)).toContain('"field":"tenant"')
    }).pipe(Effect.provide(LocalOnly))
  )
})

describe("adaptive time to live and tags", () => {
  it.effect("getOrCompute's timeToLive and tags may be functions of the computed value", () =>
    Effect.gen(function* () {
      const vip = yield* Items.getOrCompute("vip", Effect.succeed({ n: 1, org: 7 }), {
        timeToLive: (v) => (v.org === 7 ? "1 minute" : "1 hour"),
        tags: (v) => [`org:${v.org}`]
      })
      expect(vip.value.n).toBe(1)
      yield* Items.getOrCompute("other", Effect.succeed({ n: 2, org: 8 }), {
        timeToLive: (v) => (v.org === 7 ? "1 minute" : "1 hour"),
        tags: (v) => [`org:${v.org}`]
      })
      // catches: a function time to live ignored (the keyspace's 10 minutes used instead)
      yield* TestClock.adjust("61 seconds")
      expect(valueOf(yield* Items.get("vip"))).toBe(undefined)
      expect(valueOf(yield* Items.get("other"))).toBe(2)
      // catches: function tags ignored
      yield* Items.invalidateTag("org:8")
      expect(valueOf(yield* Items.get("other"))).toBe(undefined)
      // a function giving invalid input: a typed error, nothing written
      const exit = yield* Effect.exit(
        Items.getOrCompute("bad", Effect.succeed({ n: 3, org: 1 }), { timeToLive: () => "-1 seconds" })
      )
      expect(Exit.isFailure(exit) && JSON.stringify(exit.cause)).toContain('"field":"timeToLive"')
      expect(Option.isNone(yield* Items.get("bad"))).toBe(true)
    }).pipe(Effect.provide(LocalOnly))
  )
})

describe("refreshAhead", () => {
  it.effect("a hit past the fraction answers at once and refreshes once in the background", () =>
    Effect.gen(function* () {
      let computed = 0
      const compute = Effect.sync(() => ({ n: ++computed, org: 1 }))
      const options = { timeToLive: "100 seconds", refreshAhead: 0.8 } as const
      expect((yield* Items.getOrCompute("r", compute, options)).value.n).toBe(1)
      yield* TestClock.adjust("50 seconds")
      // catches: a refresh before the fraction
      expect((yield* Items.getOrCompute("r", compute, options)).value.n).toBe(1)
      expect(computed).toBe(1)
      yield* TestClock.adjust("35 seconds")
      // past 80 %: the current value at once; one background refresh however many callers
      const answers = yield* Effect.all(
        Array.from({ length: 5 }, () => Items.getOrCompute("r", compute, options)),
        { concurrency: "unbounded" }
      )
      expect(answers.map((c) => c.value.n)).toEqual([1, 1, 1, 1, 1])
      yield* Effect.yieldNow()
      yield* TestClock.adjust("1 millis")
      // catches: one refresh per caller (a stampede) or none
      expect(computed).toBe(2)
      expect((yield* Items.getOrCompute("r", compute, options)).value.n).toBe(2)
      // the refreshed entry lives a full time to live from its refresh
      yield* TestClock.adjust("70 seconds")
      expect(valueOf(yield* Items.get("r"))).toBe(2)
    }).pipe(Effect.provide(LocalOnly))
  )

  it.effect("a failing refresh is logged and leaves the value", () =>
    Effect.gen(function* () {
      const options = { timeToLive: "100 seconds", refreshAhead: 0.5 } as const
      yield* Items.getOrCompute("f", Effect.succeed({ n: 1, org: 1 }), options)
      yield* TestClock.adjust("60 seconds")
      const answer = yield* Items.getOrCompute("f", Effect.fail("db down"), options)
      // catches: a caller that waits for the refresh or sees its failure
      expect(answer.value.n).toBe(1)
      yield* Effect.yieldNow()
      expect(valueOf(yield* Items.get("f"))).toBe(1)
    }).pipe(Effect.provide(LocalOnly))
  )

  it.scopedLive("with lock, on Redis: one refresh across nodes, sealed entries read by get", () =>
    Effect.gen(function* () {
      const redis = yield* redisServer()
      const a: Node = yield* strictNode(redis.url)
      const b: Node = yield* strictNode(redis.url)
      let computed = 0
      const compute = Effect.sync(() => ({ n: ++computed, org: 1 }))
      const options = { timeToLive: "2 seconds", refreshAhead: 0.5, lock: true } as const
      yield* on(a)(Items.getOrCompute("r", compute, options))
      // catches: an entry sealed for refreshAhead that a plain get cannot read
      expect(valueOf(yield* on(b)(Items.get("r")))).toBe(1)
      yield* Effect.sleep("1100 millis")
      // past half its time to live: 10 callers on each node answer at once with the value found
      const answers = yield* Effect.all(
        [
          ...Array.from({ length: 10 }, () => on(a)(Items.getOrCompute("r", compute, options))),
          ...Array.from({ length: 10 }, () => on(b)(Items.getOrCompute("r", compute, options)))
        ],
        { concurrency: "unbounded" }
      )
      expect(answers.every((c) => c.value.n === 1)).toBe(true)
      yield* Effect.sleep("300 millis")
      // catches: one refresh per node (the lock not taken) or per caller
      expect(computed).toBe(2)
      expect(valueOf(yield* on(b)(Items.get("r")))).toBe(2)
    })
  )

  it.effect("refreshAhead out of (0, 1) is a typed error", () =>
    Effect.gen(function* () {
      for (const refreshAhead of [0, 1, -0.5, 2, Number.NaN]) {
        const exit = yield* Effect.exit(Items.getOrCompute("x", Effect.succeed({ n: 1, org: 1 }), { refreshAhead }))
        expect(Exit.isFailure(exit) && JSON.stringify(exit.cause)).toContain("refreshAhead")
      }
    }).pipe(Effect.provide(LocalOnly))
  )
})
