/**
 * One behavioural suite, run unchanged against a single Redis, a Redis Cluster (3 masters + 3 replicas) and
 * Sentinel-managed replication. Each topology is started once per block; every test builds its own caches (own
 * connections) under its own key prefix, so tests share servers but no data.
 */
import { describe, expect, layer } from "@effect/vitest"
import { type Context, Effect, Either, Layer, Option, Schema, type Scope } from "effect"
import {
  type CacheBackendUnavailable,
  type DistributedCache,
  Keyspace,
  RateLimiter,
  ReplayGuard,
  strictDistributed
} from "effect-failclosed"
import { TOPOLOGIES, Topology, topologyLayer } from "./topologies.js"

type Node = Context.Context<DistributedCache>

let prefixCounter = 0
/** a key prefix no other test uses */
const freshPrefix = () => `t${process.pid}x${++prefixCounter}`

/** a strict cache with its own client connection(s) */
const node = (keyPrefix: string): Effect.Effect<Node, CacheBackendUnavailable, Topology | Scope.Scope> =>
  Effect.flatMap(Topology, (env) =>
    Layer.build(Layer.fresh(strictDistributed({ keyPrefix }).pipe(Layer.provide(env.client()))))
  )

const on =
  (n: Node) =>
  <A, E>(effect: Effect.Effect<A, E, DistributedCache>): Effect.Effect<A, E> =>
    Effect.provide(effect, n)

const Items = Keyspace.make({
  name: "items",
  key: Schema.String,
  value: Schema.Struct({ n: Schema.Number }),
  timeToLive: "1 minute"
})
const Others = Keyspace.make({ name: "others", key: Schema.String, value: Schema.Number, timeToLive: "1 minute" })

/** the hash tag of a key, as Redis Cluster computes it: the text between the first `{` and the next `}` */
const hashTagOf = (key: string): string => {
  const open = key.indexOf("{")
  const close = open < 0 ? -1 : key.indexOf("}", open + 1)
  return close > open + 1 ? key.slice(open + 1, close) : key
}

describe.each(TOPOLOGIES)("on %s", (name) => {
  layer(topologyLayer(name), { excludeTestServices: true, timeout: "60 seconds" })((it) => {
    describe("Keyspace", () => {
      it.scoped("set then get returns the value from Redis; invalidate deletes it once", () =>
        Effect.gen(function* () {
          const n = on(yield* node(freshPrefix()))
          yield* n(Items.set("a", { n: 1 }))
          expect(yield* n(Items.get("a"))).toEqual(
            Option.some({ value: { n: 1 }, backend: "redis", degraded: false, near: false, stale: false })
          )
          expect(yield* n(Items.invalidate("a"))).toBe(true)
          expect(yield* n(Items.invalidate("a"))).toBe(false)
          expect(Option.isNone(yield* n(Items.get("a")))).toBe(true)
        })
      )

      it.scoped("a write on one node is read on another", () =>
        Effect.gen(function* () {
          const prefix = freshPrefix()
          const [a, b] = [on(yield* node(prefix)), on(yield* node(prefix))]
          for (let i = 0; i < 20; i++) yield* a(Items.set(`k${i}`, { n: i }))
          for (let i = 0; i < 20; i++) {
            expect(Option.map(yield* b(Items.get(`k${i}`)), (c) => c.value.n)).toEqual(Option.some(i))
          }
        })
      )

      it.scoped("the time to live is kept by Redis: the entry is gone after it", () =>
        Effect.gen(function* () {
          const n = on(yield* node(freshPrefix()))
          yield* n(Items.set("short", { n: 1 }, { timeToLive: "150 millis" }))
          yield* n(Items.set("long", { n: 2 }))
          expect(Option.isSome(yield* n(Items.get("short")))).toBe(true)
          yield* Effect.sleep("400 millis")
          expect(Option.isNone(yield* n(Items.get("short")))).toBe(true)
          expect(Option.isSome(yield* n(Items.get("long")))).toBe(true)
        })
      )

      it.scoped("clear deletes exactly this keyspace and tenant, on every master", () =>
        Effect.gen(function* () {
          const env = yield* Topology
          const prefix = freshPrefix()
          const n = on(yield* node(prefix))
          const writes = (count: number, f: (i: number) => Effect.Effect<void, unknown, DistributedCache>) =>
            n(
              Effect.forEach(
                Array.from({ length: count }, (_, i) => i),
                f,
                { concurrency: 16, discard: true }
              )
            )
          yield* writes(300, (i) => Items.set(`k${i}`, { n: i }, { tenant: "acme" }))
          yield* writes(40, (i) => Items.set(`k${i}`, { n: i }, { tenant: "acme-2" }))
          yield* writes(40, (i) => Items.set(`k${i}`, { n: i }))
          yield* writes(40, (i) => Others.set(`k${i}`, i, { tenant: "acme" }))
          const masters = yield* Effect.promise(() => env.masters())
          // the 300 keys of the cleared partition are spread over every master
          const perMaster = yield* Effect.promise(() =>
            Promise.all(masters.map(async (m) => Number(await m.command("DBSIZE"))))
          )
          expect(perMaster.every((count) => count > 0)).toBe(true)
          expect(yield* n(Items.clear({ tenant: "acme" }))).toBe(300)
          const left = yield* Effect.promise(() => env.keys(`${prefix}:*`))
          expect(left).toHaveLength(120)
          expect(yield* n(Items.get("k1", { tenant: "acme" }))).toEqual(Option.none())
          expect(Option.isSome(yield* n(Items.get("k1", { tenant: "acme-2" })))).toBe(true)
          expect(Option.isSome(yield* n(Items.get("k1")))).toBe(true)
          expect(Option.isSome(yield* n(Others.get("k1", { tenant: "acme" })))).toBe(true)
          expect(yield* n(Items.clear({ tenant: "acme" }))).toBe(0)
        })
      )

      it.scoped("getOrCompute: 32 concurrent misses compute once; a failure is not cached", () =>
        Effect.gen(function* () {
          const n = on(yield* node(freshPrefix()))
          let computed = 0
          const compute = Effect.sync(() => ++computed).pipe(
            Effect.delay("50 millis"),
            Effect.map((c) => ({ n: c }))
          )
          const results = yield* n(
            Effect.all(
              Array.from({ length: 32 }, () => Items.getOrCompute("shared", compute)),
              { concurrency: "unbounded" }
            )
          )
          expect(computed).toBe(1)
          expect(new Set(results.map((r) => r.value.n))).toEqual(new Set([1]))
          const failed = yield* n(Effect.either(Items.getOrCompute("failing", Effect.fail("boom" as const))))
          expect(failed).toEqual(Either.left("boom"))
          const second = yield* n(Items.getOrCompute("failing", Effect.succeed({ n: 7 })))
          expect(second.value).toEqual({ n: 7 })
          expect(Option.map(yield* n(Items.get("failing")), (c) => c.value)).toEqual(Option.some({ n: 7 }))
        })
      )

      it.scoped("tenants are separate, whatever characters a tenant id holds", () =>
        Effect.gen(function* () {
          const n = on(yield* node(freshPrefix()))
          const tenants = [undefined, "acme", "{acme}", "a:b", "*", "{", "}", "租户"]
          yield* n(Effect.forEach(tenants, (tenant, i) => Items.set("same", { n: i }, { tenant })))
          for (const [i, tenant] of tenants.entries()) {
            expect(Option.map(yield* n(Items.get("same", { tenant })), (c) => c.value.n)).toEqual(Option.some(i))
          }
          expect(yield* n(Items.clear({ tenant: "{acme}" }))).toBe(1)
          expect(Option.isSome(yield* n(Items.get("same", { tenant: "acme" })))).toBe(true)
          expect(Option.isNone(yield* n(Items.get("same", { tenant: "{acme}" })))).toBe(true)
        })
      )
    })

    describe("RateLimiter", () => {
      for (const algorithm of ["fixed-window", "sliding-window", "token-bucket"] as const) {
        it.scoped(`${algorithm}: 2 nodes × 16 concurrent callers are allowed exactly the limit`, () =>
          Effect.gen(function* () {
            const prefix = freshPrefix()
            const nodes = [on(yield* node(prefix)), on(yield* node(prefix))]
            const limiter = RateLimiter.make({ name: `exact-${algorithm}`, limit: 10, window: "1 hour", algorithm })
            const results = yield* Effect.all(
              nodes.flatMap((n) => Array.from({ length: 16 }, () => n(limiter.consume("alice", { tenant: "acme" })))),
              { concurrency: "unbounded" }
            )
            const allowed = results.filter((r) => r.allowed)
            expect(allowed).toHaveLength(10)
            expect(allowed.map((r) => r.remaining).sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
            expect(results.every((r) => r.backend === "redis" && !r.degraded)).toBe(true)
            expect((yield* nodes[1]!(limiter.consume("bob", { tenant: "acme" }))).allowed).toBe(true)
            expect((yield* nodes[0]!(limiter.consume("alice", { tenant: "other" }))).allowed).toBe(true)
          })
        )
      }

      it.scoped("every key of one decision shares one hash slot", () =>
        Effect.gen(function* () {
          const env = yield* Topology
          const prefix = freshPrefix()
          const n = on(yield* node(prefix))
          for (const algorithm of ["fixed-window", "sliding-window", "token-bucket"] as const) {
            const limiter = RateLimiter.make({ name: `slots-${algorithm}`, limit: 5, window: "1 minute", algorithm })
            for (const subject of ["alice", "bob", "carol"]) yield* n(limiter.consume(subject, { tenant: "{t}" }))
          }
          const keys = yield* Effect.promise(() => env.keys(`${prefix}:*`))
          // fixed and token: one key per subject; sliding: a log and a meta key per subject
          expect(keys).toHaveLength(3 + 6 + 3)
          const byTag = new Map<string, Array<string>>()
          for (const key of keys) byTag.set(hashTagOf(key), [...(byTag.get(hashTagOf(key)) ?? []), key])
          expect(byTag.size).toBe(9)
          if (env.cluster !== undefined) {
            for (const group of byTag.values()) {
              const slots = yield* Effect.promise(() => Promise.all(group.map((k) => env.cluster!.slotOf(k))))
              expect(new Set(slots).size).toBe(1)
            }
          }
        })
      )
    })

    describe("ReplayGuard", () => {
      it.scoped("a nonce claimed by 2 nodes × 16 concurrent callers succeeds exactly once", () =>
        Effect.gen(function* () {
          const prefix = freshPrefix()
          const nodes = [on(yield* node(prefix)), on(yield* node(prefix))]
          const guard = ReplayGuard.make({ name: "hooks", window: "1 minute" })
          for (const nonce of ["evt_1", "evt_2", "evt_3"]) {
            const claims = yield* Effect.all(
              nodes.flatMap((n) => Array.from({ length: 16 }, () => Effect.either(n(guard.claim(nonce))))),
              { concurrency: "unbounded" }
            )
            expect(claims.filter(Either.isRight)).toHaveLength(1)
            const replays = claims.filter(Either.isLeft).map((e) => e.left._tag)
            expect(new Set(replays)).toEqual(new Set(["ReplayDetected"]))
          }
        })
      )

      it.scoped("tenants claim separately, and a nonce can be claimed again after the window", () =>
        Effect.gen(function* () {
          const n = on(yield* node(freshPrefix()))
          const guard = ReplayGuard.make({ name: "tokens", window: "200 millis" })
          expect((yield* n(guard.claim("n1", { tenant: "a" }))).backend).toBe("redis")
          yield* n(guard.claim("n1", { tenant: "{a}" }))
          const again = yield* n(Effect.either(guard.claim("n1", { tenant: "a" })))
          expect(Either.isLeft(again) && again.left._tag).toBe("ReplayDetected")
          yield* Effect.sleep("400 millis")
          expect(Either.isRight(yield* n(Effect.either(guard.claim("n1", { tenant: "a" }))))).toBe(true)
        })
      )
    })
  })
})
