/**
 * getMany, setMany, tagged writes and invalidateTag under the chaos faults (kill and restart, pause, restart empty,
 * flapping, slow), in StrictDistributed and ExplicitDegraded, on two nodes with near caches. What is checked:
 *
 * - nothing hangs: every call settles within its command timeouts (a batch is one round trip per node; a tagged read
 *   at most two) plus the machine's margin;
 * - fail closed: every failure is `CacheBackendUnavailable`; StrictDistributed never answers degraded; an
 *   ExplicitDegraded answer marks `degraded` exactly when it came from the fallback; `invalidateTag` never succeeds
 *   node-locally (a success means Redis deleted the stamp);
 * - a tag removal holds: once `invalidateTag` succeeded on node A, no read of node B that starts after the near
 *   cache's invalidation bound returns (from Redis or its near cache) the entry written with the tag before it.
 */
import { describe, expect, it } from "@effect/vitest"
import { Cause, Duration, Effect, Exit, Fiber, Layer, Logger, Option, Schema } from "effect"
import type { Cached, DistributedCache } from "effect-failclosed"
import { explicitDegraded, Keyspace, RedisClient, strictDistributed } from "effect-failclosed"
import type { Context } from "effect"
import { redisServer } from "../support/RedisServer.js"
import { ciSettings, type ModeName } from "./driver.js"
import { ciFaults } from "./faults.js"

const MAX_STALENESS_MS = 300
/** the invalidation bound of the near cache, with the margin of a loaded machine */
const NEAR_BOUND_MS = MAX_STALENESS_MS + 400
const Value = Schema.Struct({ v: Schema.Number })
const Items = Keyspace.make({
  name: "chaos-batches",
  key: Schema.String,
  value: Value,
  timeToLive: "1 minute",
  nearCache: { capacity: 1_000, maxStaleness: Duration.millis(MAX_STALENESS_MS) }
})

type Node = Context.Context<DistributedCache>
const nodeOf = (url: string, mode: ModeName) =>
  Layer.build(
    Layer.fresh(
      (mode === "StrictDistributed"
        ? strictDistributed({ cooldown: Duration.millis(ciSettings.cooldownMillis) })
        : explicitDegraded({ cooldown: Duration.millis(ciSettings.cooldownMillis) })
      ).pipe(
        Layer.provide(
          RedisClient.layer({
            url,
            commandTimeout: Duration.millis(ciSettings.commandTimeoutMillis),
            connectTimeout: Duration.millis(ciSettings.connectTimeoutMillis),
            maxReconnectDelay: Duration.millis(ciSettings.maxReconnectDelayMillis)
          })
        )
      )
    )
  ) as Effect.Effect<Node, never, import("effect").Scope.Scope>

/** the longest a call may take: two round trips (a tagged read: the entry, then its stamps) and the margin */
const HANG_MS = 2 * ciSettings.commandTimeoutMillis + 4 * ciSettings.hangMarginMillis

interface Violations {
  readonly list: Array<string>
}

const checkExit = <A>(
  mode: ModeName,
  exit: Exit.Exit<A, unknown>,
  took: number,
  what: string,
  violations: Violations,
  marks: (a: A) => ReadonlyArray<Cached<unknown>>
) => {
  if (took > HANG_MS) violations.list.push(`${what} took ${Math.round(took)} ms`)
  if (Exit.isFailure(exit)) {
    const failure = Cause.failureOption(exit.cause)
    if (Option.isNone(failure)) violations.list.push(`${what} died: ${Cause.pretty(exit.cause)}`)
    else if ((failure.value as { _tag?: string })._tag !== "CacheBackendUnavailable") {
      violations.list.push(`${what} failed with ${(failure.value as { _tag?: string })._tag}`)
    }
    return
  }
  for (const c of marks(exit.value)) {
    if (c.degraded !== (c.backend === "local_degraded")) violations.list.push(`${what}: marks disagree`)
    if (mode === "StrictDistributed" && (c.degraded || c.backend !== "redis")) {
      violations.list.push(`${what}: StrictDistributed answered ${c.backend}`)
    }
  }
}

const timedExit = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.suspend(() => {
    const start = performance.now()
    return Effect.map(Effect.exit(effect), (exit) => [exit, performance.now() - start] as const)
  })

const scenario = (mode: ModeName, faultIndex: number) =>
  Effect.gen(function* () {
    const fault = ciFaults(ciSettings.commandTimeoutMillis)[faultIndex]!
    const server = yield* redisServer()
    const a = yield* nodeOf(server.url, mode)
    const b = yield* nodeOf(server.url, mode)
    const violations: Violations = { list: [] }
    let stop = false
    let batches = 0
    let tagChecks = 0
    const keys = Array.from({ length: 20 }, (_, i) => `k${i}`)

    /** batch load on both nodes: setMany then getMany, checked */
    const batchLoad = (node: Node, seed: number) =>
      Effect.gen(function* () {
        let round = seed
        while (!stop) {
          round++
          const slice = keys.slice(round % 10, (round % 10) + 10)
          const [setExit, setTook] = yield* timedExit(
            Effect.provide(Items.setMany(slice.map((k) => [k, { v: round }] as const)), node)
          )
          checkExit(mode, setExit, setTook, "setMany", violations, () => [])
          const [getExit, getTook] = yield* timedExit(Effect.provide(Items.getMany(slice), node))
          checkExit(mode, getExit, getTook, "getMany", violations, (read) =>
            read.flatMap((o) => (Option.isSome(o) ? [o.value] : []))
          )
          batches++
          yield* Effect.sleep(Duration.millis(5))
        }
      })

    /**
     * the tag rule: A writes `tagged` with a fresh tag version and removes the tag; once that succeeded, B's reads
     * that start past the near bound never return that version (or an older one) unless degraded
     */
    const tagChecker = Effect.gen(function* () {
      let version = 0
      while (!stop) {
        version++
        const written = version
        const setExit = yield* Effect.exit(Effect.provide(Items.set("tagged", { v: written }, { tags: ["t"] }), a))
        if (Exit.isFailure(setExit)) {
          yield* Effect.sleep(Duration.millis(20))
          continue
        }
        // B reads it (fills its near cache while Redis answers)
        yield* Effect.exit(Effect.provide(Items.get("tagged"), b))
        const [removed, took] = yield* timedExit(Effect.provide(Items.invalidateTag("t"), a))
        checkExit(mode, removed, took, "invalidateTag", violations, () => [])
        if (Exit.isFailure(removed)) {
          // fails at once during a cooldown: without a pause this loop would starve the process (and the harness)
          yield* Effect.sleep(Duration.millis(20))
          continue
        }
        const at = performance.now()
        // a success means Redis confirmed it: the stamp is gone there
        while (performance.now() - at < NEAR_BOUND_MS) yield* Effect.sleep(Duration.millis(20))
        for (let i = 0; i < 5; i++) {
          for (const node of [a, b]) {
            const read = yield* Effect.exit(Effect.provide(Items.get("tagged"), node))
            if (Exit.isSuccess(read) && Option.isSome(read.value)) {
              const c = read.value.value
              if (!c.degraded && c.value.v <= written) {
                violations.list.push(`a read after invalidateTag returned version ${c.value.v} (near: ${c.near})`)
              }
            }
          }
          yield* Effect.sleep(Duration.millis(10))
        }
        tagChecks++
      }
    })

    const fibers = yield* Effect.all(
      [
        Effect.fork(batchLoad(a, 0)),
        Effect.fork(batchLoad(b, 5)),
        Effect.fork(batchLoad(a, 3)),
        Effect.fork(tagChecker)
      ],
      { concurrency: "unbounded" }
    )
    yield* Effect.sleep(Duration.millis(ciSettings.beforeMillis))
    yield* Effect.promise(() => fault.run(server, { killed: () => undefined }))
    yield* Effect.sleep(Duration.millis(ciSettings.afterMillis + NEAR_BOUND_MS))
    stop = true
    yield* Fiber.joinAll(fibers)
    return { violations: violations.list, batches, tagChecks, fault: fault.name }
  }).pipe(Effect.provide(Logger.remove(Logger.defaultLogger)))

const FAULTS = ["kill-restart", "pause-resume", "restart-empty", "flapping", "slow"]

for (const mode of ["StrictDistributed", "ExplicitDegraded"] as const) {
  describe(`${mode}: batches and tags under faults`, () => {
    FAULTS.forEach((name, index) => {
      it.scopedLive(
        `getMany, setMany and invalidateTag fail closed and keep the tag rule: ${name}`,
        () =>
          Effect.gen(function* () {
            const report = yield* scenario(mode, index)
            expect(report.fault).toBe(name)
            expect(report.violations.slice(0, 10)).toEqual([])
            // the run did what it says
            expect(report.batches).toBeGreaterThan(20)
            expect(report.tagChecks).toBeGreaterThan(0)
          }),
        30_000
      )
    })
  })
}
