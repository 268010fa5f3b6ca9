/**
 * Redis Cluster failovers under load. One cluster (3 masters + 3 replicas, node timeout 1 s) serves three runs, each
 * against another shard: its master is killed or paused (SIGSTOP) while 2 × 8 fibers run get/set, replay claims and
 * rate-limit decisions on a key of that shard ("busy") and on a key of another shard ("other"). The client is never
 * touched: it has to find the promoted replica on its own.
 */
import { describe, expect, layer } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import { explicitDegraded, RedisClient, strictDistributed } from "effect-failclosed"
import { redisCluster, type RedisCluster } from "../support/RedisCluster.js"
import { describeRun, pickClusterVictim, type RunResult, runUnderLoad, summarize } from "./failover.js"

/** commandTimeout (300 ms, from the call) and room for a busy 2-core machine; event-loop stalls excused */
const OPERATION_BOUND_MS = 1_000

class Cluster extends Context.Tag("test/Cluster")<Cluster, RedisCluster>() {}

const run = (mode: "strict" | "degraded", fault: "kill" | "pause") =>
  Effect.gen(function* () {
    const cluster = yield* Cluster
    const { busyTag, otherTag, slot, victim } = yield* Effect.promise(() => pickClusterVictim(cluster))
    const keyPrefix = `fo-${mode}-${fault}`
    const client = RedisClient.layerCluster({ nodes: cluster.nodes })
    const cache = mode === "strict" ? strictDistributed({ keyPrefix }) : explicitDegraded({ keyPrefix })
    const node = yield* Layer.build(Layer.fresh(cache.pipe(Layer.provide(client))))
    const result = yield* runUnderLoad({
      node,
      keyPrefix,
      busyTag,
      otherTag,
      fault: () => (fault === "kill" ? victim.kill() : Promise.resolve(victim.pause())),
      promoted: () => cluster.waitForPromotion(slot, victim).then(() => undefined)
    })
    const summary = summarize(result)
    console.log(describeRun(`cluster, ${mode}, master ${fault === "kill" ? "killed" : "paused"}`, summary))
    return { result, summary }
  })

/** after the window, the busy target has succeeded (not degraded) for the rest of the run, several times */
const recovered = (result: RunResult, windowEnd: number) => {
  const after = result.samples.filter((s) => s.target === "busy" && s.start > windowEnd)
  expect(after.length).toBeGreaterThan(10)
  expect(after.every((s) => s.outcome === "ok" && !s.degraded)).toBe(true)
}

describe("Redis Cluster failover under load", () => {
  layer(Layer.scoped(Cluster, redisCluster()), { excludeTestServices: true, timeout: "60 seconds" })((it) => {
    const strictCases = [
      [
        "kill",
        "strict, master killed: its slot fails closed within the bound, never hangs, recovers unaided; other slots never fail"
      ],
      ["pause", "strict, master paused (a black hole): the same, bounded by the command timeout"]
    ] as const
    for (const [fault, name] of strictCases) {
      it.scoped(
        name,
        () =>
          Effect.gen(function* () {
            const { result, summary } = yield* run("strict", fault)
            expect(summary.outcomes).toEqual(["CacheBackendUnavailable", "ok"])
            expect(summary.maxNetLatencyMillis).toBeLessThan(OPERATION_BOUND_MS)
            expect(summary.busy.failed).toBeGreaterThan(0)
            expect(summary.other).toMatchObject({ failed: 0, degraded: 0 })
            expect(summary.other.ok).toBeGreaterThan(100)
            recovered(result, result.faultAt + summary.windowMillis)
            expect(result.events).toEqual(["BACKEND_UNAVAILABLE_AT_RUNTIME", "BACKEND_RECOVERED"])
          }),
        30_000
      )
    }

    it.scoped(
      "degraded, master paused: nothing fails, the busy slot's results are marked, one event per transition",
      () =>
        Effect.gen(function* () {
          const { result, summary } = yield* run("degraded", "pause")
          expect(summary.outcomes).toEqual(["ok"])
          expect(summary.maxNetLatencyMillis).toBeLessThan(OPERATION_BOUND_MS)
          expect(summary.busy.degraded).toBeGreaterThan(0)
          expect(summary.other).toMatchObject({ failed: 0, degraded: 0 })
          recovered(result, result.faultAt + summary.windowMillis)
          expect(result.events).toEqual(["BACKEND_UNAVAILABLE_AT_RUNTIME", "BACKEND_RECOVERED"])
        }),
      30_000
    )
  })
})
