/**
 * Sentinel failovers under load: the master (1 master, 1 replica, 3 sentinels, down-after 1 s) is killed or paused
 * (SIGSTOP) while 2 × 8 fibers run get/set, replay claims and rate-limit decisions. With one master every key is on
 * it: the whole cache is unavailable until the sentinels promote the replica and the client, untouched, follows.
 * Each run has its own servers.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { explicitDegraded, RedisClient, strictDistributed } from "effect-failclosed"
import { redisSentinel } from "../support/RedisSentinel.js"
import { describeRun, type RunResult, runUnderLoad, summarize } from "./failover.js"

/** commandTimeout (300 ms, from the call) and room for a busy 2-core machine; event-loop stalls excused */
const OPERATION_BOUND_MS = 1_000

const run = (mode: "strict" | "degraded", fault: "kill" | "pause") =>
  Effect.gen(function* () {
    const sentinel = yield* redisSentinel()
    const victim = yield* Effect.promise(() => sentinel.master())
    const keyPrefix = `fo-${mode}-${fault}`
    const client = RedisClient.layerSentinel({ sentinels: sentinel.sentinelAddresses, name: sentinel.name })
    const cache = mode === "strict" ? strictDistributed({ keyPrefix }) : explicitDegraded({ keyPrefix })
    const node = yield* Layer.build(cache.pipe(Layer.provide(client)))
    const result = yield* runUnderLoad({
      node,
      keyPrefix,
      busyTag: "busy",
      otherTag: "other",
      fault: () => (fault === "kill" ? victim.kill() : Promise.resolve(victim.pause())),
      promoted: () => sentinel.waitForFailover(victim).then(() => undefined)
    })
    const summary = summarize(result)
    console.log(describeRun(`sentinel, ${mode}, master ${fault === "kill" ? "killed" : "paused"}`, summary))
    return { result, summary }
  })

/** after the last failed or degraded operation (of either key: both are on the one master), only successes */
const recovered = (result: RunResult) => {
  const bad = result.samples.filter((s) => s.outcome !== "ok" || s.degraded)
  const windowEnd = Math.max(...bad.map((s) => s.end))
  const after = result.samples.filter((s) => s.start > windowEnd)
  expect(after.length).toBeGreaterThan(10)
  expect(after.every((s) => s.outcome === "ok" && !s.degraded)).toBe(true)
}

describe("Sentinel failover under load", () => {
  for (const fault of ["kill", "pause"] as const) {
    it.scopedLive(
      `strict, master ${fault === "kill" ? "killed" : "paused"}: fails closed within the bound, never hangs, recovers unaided`,
      () =>
        Effect.gen(function* () {
          const { result, summary } = yield* run("strict", fault)
          expect(summary.outcomes).toEqual(["CacheBackendUnavailable", "ok"])
          expect(summary.maxNetLatencyMillis).toBeLessThan(OPERATION_BOUND_MS)
          expect(summary.busy.failed).toBeGreaterThan(0)
          recovered(result)
          expect(result.events).toEqual(["BACKEND_UNAVAILABLE_AT_RUNTIME", "BACKEND_RECOVERED"])
        }),
      30_000
    )
  }

  it.scopedLive(
    "degraded, master paused: nothing fails, results are marked while it lasts, one event per transition",
    () =>
      Effect.gen(function* () {
        const { result, summary } = yield* run("degraded", "pause")
        expect(summary.outcomes).toEqual(["ok"])
        expect(summary.maxNetLatencyMillis).toBeLessThan(OPERATION_BOUND_MS)
        expect(summary.busy.degraded).toBeGreaterThan(0)
        recovered(result)
        expect(result.events).toEqual(["BACKEND_UNAVAILABLE_AT_RUNTIME", "BACKEND_RECOVERED"])
      }),
    30_000
  )
})
