/**
 * `Keyspace.getMany` / `setMany` on LocalOnly, a redis-server and a Redis Cluster, with Redis killed; commands are
 * counted by Redis itself (`INFO commandstats`). Each test says what it would catch.
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Exit, Layer, Logger, Option, Schema } from "effect"
import type { Cached } from "effect-failclosed"
import { explicitDegraded, Keyspace, LocalOnly, RedisClient, strictDistributed } from "effect-failclosed"
import { cli, type Node, on, strictNode } from "./support/nodes.js"
import { type RedisServer, redisServer } from "./support/RedisServer.js"
import { redisCluster } from "./support/RedisCluster.js"

const Value = Schema.Struct({ n: Schema.Number })
type Value = typeof Value.Type
const Items = Keyspace.make({ name: "batch", key: Schema.String, value: Value, timeToLive: "10 minutes" })
const Near = Keyspace.make({
  name: "batch-near",
  key: Schema.String,
  value: Value,
  timeToLive: "10 minutes",
  nearCache: { capacity: 1000, maxStaleness: "1 second" }
})

const values = (read: ReadonlyArray<Option.Option<Cached<Value>>>) =>
  read.map((o) => (Option.isSome(o) ? o.value.value.n : undefined))

const calls = (redis: RedisServer) =>
  Effect.map(cli(redis, "INFO", "commandstats"), (text) => {
    const out: Record<string, number> = {}
    for (const m of text.matchAll(/^cmdstat_([a-z|]+):calls=(\d+)/gm)) out[m[1]!] = Number(m[2])
    return out
  })

describe("getMany / setMany", () => {
  it.effect("LocalOnly: answers in key order, None for a missing key", () =>
    Effect.gen(function* () {
      yield* Items.setMany([
        ["a", { n: 1 }],
        ["c", { n: 3 }]
      ])
      // catches: answers out of key order or a missing key dropped (the array shorter than the keys)
      expect(values(yield* Items.getMany(["c", "b", "a", "c"]))).toEqual([3, undefined, 1, 3])
      expect(yield* Items.getMany([])).toEqual([])
    }).pipe(Effect.provide(LocalOnly))
  )

  it.scoped("a redis-server: 100 keys are one MGET and one SET pipeline, tenants apart", () =>
    Effect.gen(function* () {
      const redis = yield* redisServer()
      const node = yield* strictNode(redis.url)
      const keys = Array.from({ length: 100 }, (_, i) => `k${i}`)
      yield* cli(redis, "CONFIG", "RESETSTAT")
      yield* on(node)(
        Items.setMany(
          keys.filter((_, i) => i % 2 === 0).map((k, i) => [k, { n: i }] as const),
          { tenant: "acme", timeToLive: "1 minute" }
        )
      )
      const read = yield* on(node)(Items.getMany(keys, { tenant: "acme" }))
      expect(values(read)).toEqual(keys.map((_, i) => (i % 2 === 0 ? i / 2 : undefined)))
      expect(read.every((o) => Option.isNone(o) || (o.value.backend === "redis" && !o.value.degraded))).toBe(true)
      const stats = yield* calls(redis)
      // catches: one GET per key (the point of a batch), or a write per key sent alone
      expect(stats["mget"]).toBe(1)
      expect(stats["get"]).toBeUndefined()
      expect(stats["set"]).toBe(50)
      // catches: a tenant that reaches another tenant's entries
      expect(values(yield* on(node)(Items.getMany(keys.slice(0, 2), { tenant: "umbrella" })))).toEqual([
        undefined,
        undefined
      ])
      // catches: setMany's timeToLive ignored
      const ttl = Number(yield* cli(redis, "PTTL", (yield* cli(redis, "--scan")).split("\n")[0]!))
      expect(ttl).toBeGreaterThan(50_000)
      expect(ttl).toBeLessThanOrEqual(60_000)
    })
  )

  it.scopedLive("near hits are served in process: only the rest goes to Redis", () =>
    Effect.gen(function* () {
      const redis = yield* redisServer()
      const node: Node = yield* strictNode(redis.url)
      yield* on(node)(Near.setMany(Array.from({ length: 10 }, (_, i) => [`n${i}`, { n: i }] as const)))
      // own writes are near at once once coherence is proven: wait for a near hit
      for (let i = 0; i < 300; i++) {
        const read = yield* on(node)(Near.getMany(["n0"]))
        if (Option.isSome(read[0]!) && read[0]!.value.near) break
        yield* Effect.sleep("10 millis")
      }
      yield* on(node)(Near.getMany(Array.from({ length: 10 }, (_, i) => `n${i}`)))
      yield* cli(redis, "CONFIG", "RESETSTAT")
      const read = yield* on(node)(Near.getMany([...Array.from({ length: 10 }, (_, i) => `n${i}`), "missing"]))
      expect(values(read)).toEqual([...Array.from({ length: 10 }, (_, i) => i), undefined])
      expect(read.slice(0, 10).every((o) => Option.isSome(o) && o.value.near)).toBe(true)
      const stats = yield* calls(redis)
      // catches: near hits sent to Redis anyway (the MGET must hold only the one missing key)
      expect(stats["mget"]).toBe(1)
    })
  )

  it.effect("bad input in any element is a typed error and nothing is written", () =>
    Effect.gen(function* () {
      const bad = [
        [
          ["a", { n: 1 }],
          ["b", { n: Number.NaN }]
        ],
        [
          ["a", { n: 1 }],
          ["b", { n: "x" } as unknown as Value]
        ]
      ] as const
      for (const entries of bad) {
        const exit = yield* Effect.exit(Items.setMany(entries))
        // catches: a partial write (a before b was checked) or an untyped failure
        expect(Exit.isFailure(exit) && JSON.stringify(exit.cause)).toContain("entries[1]")
        expect(Option.isNone((yield* Items.getMany(["a"]))[0]!)).toBe(true)
      }
      const tenant = yield* Effect.exit(Items.setMany([["a", { n: 1 }]], { tenant: "" }))
      expect(Exit.isFailure(tenant) && JSON.stringify(tenant.cause)).toContain('"field":"tenant"')
      const ttl = yield* Effect.exit(Items.setMany([["a", { n: 1 }]], { timeToLive: "-1 seconds" }))
      expect(Exit.isFailure(ttl) && JSON.stringify(ttl.cause)).toContain('"field":"timeToLive"')
      const read = yield* Effect.exit(Items.getMany(["a"], { tenant: "" }))
      expect(Exit.isFailure(read) && JSON.stringify(read.cause)).toContain("CacheValueInvalid")
    }).pipe(Effect.provide(LocalOnly))
  )

  it.scoped("a Redis Cluster: keys over every master, answers in key order", () =>
    Effect.gen(function* () {
      const cluster = yield* redisCluster()
      const node: Node = yield* Layer.build(
        Layer.fresh(
          strictDistributed().pipe(
            Layer.provide(RedisClient.layerCluster({ nodes: cluster.nodes, commandTimeout: "3 seconds" }))
          )
        )
      )
      const keys = Array.from({ length: 100 }, (_, i) => `c${i}`)
      yield* on(node)(Items.setMany(keys.map((k, i) => [k, { n: i }] as const)))
      // catches: CROSSSLOT (keys of many slots in one command), or values put back in the wrong places
      expect(values(yield* on(node)(Items.getMany([...keys].reverse())))).toEqual(keys.map((_, i) => 99 - i))
    })
  )

  it.scopedLive("Redis killed: StrictDistributed fails closed; ExplicitDegraded marks every result degraded", () =>
    Effect.gen(function* () {
      const redis = yield* redisServer()
      const client = RedisClient.layer({ url: redis.url, commandTimeout: Duration.millis(200) })
      const strict: Node = yield* Layer.build(Layer.fresh(strictDistributed().pipe(Layer.provide(client))))
      const degraded: Node = yield* Layer.build(Layer.fresh(explicitDegraded().pipe(Layer.provide(client))))
      yield* on(strict)(Items.setMany([["a", { n: 1 }]]))
      yield* Effect.promise(() => redis.kill())
      // catches: a batch that hangs, or answers from memory, in StrictDistributed
      for (const op of [Items.getMany(["a", "b"]), Items.setMany([["a", { n: 2 }]])]) {
        const exit = yield* Effect.exit(on(strict)(op as Effect.Effect<unknown, unknown, never>))
        expect(Exit.isFailure(exit) && JSON.stringify(exit.cause)).toContain("CacheBackendUnavailable")
      }
      // catches: a degraded answer not marked as one
      yield* on(degraded)(Items.setMany([["a", { n: 3 }]]))
      const read = yield* on(degraded)(Items.getMany(["a", "b"]))
      expect(values(read)).toEqual([3, undefined])
      expect(Option.isSome(read[0]!) && read[0]!.value.degraded && read[0]!.value.backend).toBe("local_degraded")
    }).pipe(Effect.provide(Logger.remove(Logger.defaultLogger)))
  )
})
