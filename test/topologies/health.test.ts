/**
 * The health check on a real Redis Cluster (3 masters + 3 replicas): one breaker per shard that served traffic, by
 * slot range; a killed master opens its shard's breaker only, and the check says so without naming an address.
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Exit, Layer, Logger, LogLevel, Schema } from "effect"
import { type DistributedCache, Health, Keyspace, RedisClient, strictDistributed } from "effect-failclosed"
import { redisCluster } from "../support/RedisCluster.js"

const Items = Keyspace.make({ name: "health-items", key: Schema.String, value: Schema.Number, timeToLive: "1 minute" })

describe("Health.check on a Redis Cluster", () => {
  it.scopedLive(
    "reports the breaker of each shard by slot range; a killed master opens its own shard's only",
    () =>
      Effect.gen(function* () {
        const cluster = yield* redisCluster()
        const cache = yield* Layer.build(
          strictDistributed({ cooldown: "10 seconds" }).pipe(
            Layer.provide(
              RedisClient.layerCluster({
                nodes: cluster.nodes,
                commandTimeout: Duration.millis(300),
                connectTimeout: Duration.millis(300),
                maxReconnectDelay: Duration.millis(100)
              })
            )
          )
        )
        const run = <A, E>(self: Effect.Effect<A, E, DistributedCache>) => Effect.provide(self, cache)
        // traffic on every shard: 30 keys spread over the slots
        for (let i = 0; i < 30; i++) yield* run(Items.set(`k${i}`, i))
        const up = yield* run(Health.check)
        expect(up.status).toBe("pass")
        expect(up.reachable).toBe(true)
        const shards = up.breakers.filter((b) => b.domain !== "all")
        expect(shards).toHaveLength(3)
        for (const b of up.breakers) expect(b.open).toBe(false)
        for (const b of shards) expect(b.domain).toMatch(/^slots \d+-\d+$/)

        // kill the master of one entry's slot: a write to one of its keys opens that shard's breaker only
        const [storeKey] = (yield* Effect.promise(() => cluster.servers[0]!.command("KEYS", "*"))).split("\n")
        const master = yield* Effect.promise(() => cluster.slotOf(storeKey!).then((slot) => cluster.masterOfSlot(slot)))
        yield* Effect.promise(() => master.kill())
        let failed = false
        for (let i = 0; i < 30 && !failed; i++) failed = Exit.isFailure(yield* Effect.exit(run(Items.set(`k${i}`, i))))
        expect(failed).toBe(true)
        const down = yield* run(Health.check)
        expect(down.status).toBe("fail")
        const open = down.breakers.filter((b) => b.open)
        expect(open).toHaveLength(1)
        expect(open[0]!.domain).toMatch(/^slots \d+-\d+$/)
        // no address of any node in what it answers
        const text = JSON.stringify(down)
        expect(text).not.toContain("127.0.0.1")
        for (const server of cluster.servers) expect(text).not.toContain(String(server.port))
      }).pipe(Logger.withMinimumLogLevel(LogLevel.None)),
    60_000
  )
})
