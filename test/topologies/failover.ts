/**
 * A load driver for failover tests and the failover benchmark: fibers run get/set, replay claims and rate-limit
 * decisions on a "busy" hash tag (whose master is then killed or paused) and on an "other" hash tag (on another
 * master, or the same one for Sentinel), while a fault and the promotion of a replica happen. Every operation is
 * recorded with its start, end and outcome; the summary gives the unavailability window and latencies.
 */
import { Cause, Context, Effect, Exit, Fiber, Logger, Option, Schema } from "effect"
import { DistributedCache, SecurityEvent } from "effect-failclosed"
import { watchLoop } from "../chaos/stalls.js"
import type { ClusterNodeInfo, RedisCluster } from "../support/RedisCluster.js"

export type Target = "busy" | "other"
export type Operation = "set" | "get" | "claim" | "rateLimit"

export interface Sample {
  readonly target: Target
  readonly op: Operation
  /** performance.now() milliseconds */
  readonly start: number
  readonly end: number
  readonly outcome: "ok" | "CacheBackendUnavailable" | "other failure" | "defect"
  readonly degraded: boolean
  readonly detail: string | undefined
  /** milliseconds of this operation during which the event loop did not run at all (no CPU, GC) */
  readonly stalled: number
}

export interface RunResult {
  readonly samples: ReadonlyArray<Sample>
  readonly faultAt: number
  /** when the harness saw the replica promoted (polling, 50 ms granularity) */
  readonly promotedAt: number
  /** the kinds of the security events logged during the run, in order */
  readonly events: ReadonlyArray<string>
  /** the longest time the event loop did not turn during the run */
  readonly longestStallMillis: number
}

export interface RunOptions {
  readonly node: Context.Context<DistributedCache>
  readonly keyPrefix: string
  readonly busyTag: string
  readonly otherTag: string
  /** fibers per target (default 8) */
  readonly fibers?: number
  /** load before the fault (default 300 ms) */
  readonly warmupMillis?: number
  /** injects the fault */
  readonly fault: () => Promise<void>
  /** resolves once Redis has promoted a replica */
  readonly promoted: () => Promise<void>
  /** stop once the busy target has succeeded for this long after the promotion (default 500 ms) */
  readonly settleMillis?: number
  /** stop anyway this long after the fault (default 15 s) */
  readonly deadlineMillis?: number
}

const isSecurityEvent = Schema.is(SecurityEvent)

const classify = <A>(exit: Exit.Exit<A, unknown>, degradedOf: (a: A) => boolean) => {
  if (Exit.isSuccess(exit)) return { outcome: "ok" as const, degraded: degradedOf(exit.value), detail: undefined }
  const failure = Cause.failureOption(exit.cause)
  if (Option.isSome(failure)) {
    const error = failure.value as { _tag?: string; reason?: string }
    return error._tag === "CacheBackendUnavailable"
      ? { outcome: "CacheBackendUnavailable" as const, degraded: false, detail: error.reason }
      : { outcome: "other failure" as const, degraded: false, detail: JSON.stringify(error) }
  }
  return { outcome: "defect" as const, degraded: false, detail: Cause.pretty(exit.cause) }
}

/** Runs the load, injects the fault, waits for the promotion and for the busy target to succeed again. */
export const runUnderLoad = (options: RunOptions): Effect.Effect<RunResult> =>
  Effect.gen(function* () {
    const cache = Context.get(options.node, DistributedCache)
    const samples: Array<Sample> = []
    const loop = watchLoop()
    const events: Array<string> = []
    let running = true
    const keyOf = (target: Target) => `${options.keyPrefix}:{${target === "busy" ? options.busyTag : options.otherTag}}`

    const operation = (target: Target, fiber: number, i: number) => {
      const key = keyOf(target)
      switch (i % 4) {
        case 0:
          return ["set", Effect.map(cache.set(`${key}:kv`, String(i), 60_000), (c) => c.degraded)] as const
        case 1:
          return ["get", Effect.map(cache.get(`${key}:kv`), (c) => c.degraded)] as const
        case 2:
          return ["claim", Effect.map(cache.claim(`${key}:n:${fiber}:${i}`, 60_000), (c) => c.degraded)] as const
        default:
          return [
            "rateLimit",
            Effect.map(
              cache.rateLimit({
                key: `${key}:rl`,
                algorithm: "fixed-window",
                limit: 1_000_000_000,
                windowMillis: 60_000,
                cost: 1
              }),
              (c) => c.degraded
            )
          ] as const
      }
    }

    const worker = (target: Target, fiber: number) =>
      Effect.gen(function* () {
        for (let i = fiber; running; i++) {
          const [op, effect] = operation(target, fiber, i)
          const start = performance.now()
          const exit = yield* Effect.exit(effect)
          const end = performance.now()
          samples.push({ target, op, start, end, stalled: 0, ...classify(exit, (d: boolean) => d) })
          yield* Effect.sleep("5 millis")
        }
      })

    const logger = Logger.make(({ message }) => {
      const event = Array.isArray(message) ? message[0] : message
      events.push(isSecurityEvent(event) ? event.event : `not a security event: ${JSON.stringify(message)}`)
    })
    const fibers = options.fibers ?? 8
    const workers = yield* Effect.forkAll(
      (["busy", "other"] as const).flatMap((target) => Array.from({ length: fibers }, (_, f) => worker(target, f)))
    ).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)))

    yield* Effect.sleep(options.warmupMillis ?? 300)
    const faultAt = performance.now()
    yield* Effect.promise(options.fault)
    yield* Effect.promise(options.promoted)
    const promotedAt = performance.now()
    const settle = options.settleMillis ?? 500
    const deadline = faultAt + (options.deadlineMillis ?? 15_000)
    for (;;) {
      const lastBusyFailure = findLast(samples, (s) => s.target === "busy" && (s.outcome !== "ok" || s.degraded))
      const since = Math.max(promotedAt, lastBusyFailure?.end ?? 0)
      if (performance.now() - since >= settle || performance.now() > deadline) break
      yield* Effect.sleep("20 millis")
    }
    running = false
    yield* Fiber.join(workers)
    loop.stop()
    const withStalls = samples.map((s) => ({ ...s, stalled: loop.stalledWithin(s.start, s.end) }))
    return { samples: withStalls, faultAt, promotedAt, events, longestStallMillis: loop.longestStall() }
  })

export interface Summary {
  /** from the fault to the end of the last failed (or degraded) busy operation: after it, every one succeeded */
  readonly windowMillis: number
  /** from the fault to the promotion, as the harness saw it */
  readonly failoverMillis: number
  readonly busy: { readonly ok: number; readonly failed: number; readonly degraded: number }
  readonly other: { readonly ok: number; readonly failed: number; readonly degraded: number }
  readonly maxLatencyMillis: number
  /** the slowest operation, less the time the event loop stood still during it (a loaded machine, not the client) */
  readonly maxNetLatencyMillis: number
  readonly longestStallMillis: number
  readonly outcomes: ReadonlyArray<string>
}

export const summarize = (run: RunResult): Summary => {
  const after = run.samples.filter((s) => s.end >= run.faultAt)
  const count = (target: Target) => {
    const of = after.filter((s) => s.target === target)
    return {
      ok: of.filter((s) => s.outcome === "ok" && !s.degraded).length,
      failed: of.filter((s) => s.outcome !== "ok").length,
      degraded: of.filter((s) => s.outcome === "ok" && s.degraded).length
    }
  }
  const lastBad = findLast(after, (s) => s.target === "busy" && (s.outcome !== "ok" || s.degraded))
  return {
    windowMillis: lastBad === undefined ? 0 : lastBad.end - run.faultAt,
    failoverMillis: run.promotedAt - run.faultAt,
    busy: count("busy"),
    other: count("other"),
    maxLatencyMillis: Math.max(...run.samples.map((s) => s.end - s.start)),
    maxNetLatencyMillis: Math.max(...run.samples.map((s) => s.end - s.start - s.stalled)),
    longestStallMillis: run.longestStallMillis,
    outcomes: [...new Set(run.samples.map((s) => s.outcome))].sort()
  }
}

const findLast = <A>(items: ReadonlyArray<A>, f: (a: A) => boolean): A | undefined => {
  for (let i = items.length - 1; i >= 0; i--) if (f(items[i]!)) return items[i]
  return undefined
}

export const median = (values: ReadonlyArray<number>): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

/** a master of the cluster that is healthy and has a live replica, a tag on it and a tag on another healthy master */
export const pickClusterVictim = async (cluster: RedisCluster) => {
  // on a busy machine a replica may still be joining (or a node still marked failing) from the previous test: wait
  let victimInfo: ClusterNodeInfo | undefined
  let otherInfo: ClusterNodeInfo | undefined
  for (const deadline = Date.now() + 15_000; ;) {
    const nodes = await cluster.topology()
    const healthy = nodes.filter((n) => n.role === "master" && !n.failing && n.slots.length > 0)
    victimInfo = healthy.find((m) =>
      nodes.some((r) => r.role === "replica" && r.masterId === m.id && !r.failing && cluster.serverAt(r.port).isRunning)
    )
    otherInfo = healthy.find((m) => m !== victimInfo)
    if ((victimInfo !== undefined && otherInfo !== undefined) || Date.now() > deadline) break
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  if (victimInfo === undefined || otherInfo === undefined) throw new Error("no master with a live replica left")
  const victim = cluster.serverAt(victimInfo.port)
  const busyTag = await cluster.keyOwnedBy(victim, "busy")
  const otherTag = await cluster.keyOwnedBy(cluster.serverAt(otherInfo.port), "other")
  return { victim, busyTag, otherTag, slot: await cluster.slotOf(busyTag) }
}

/** one line per run, for the test output and the docs */
export const describeRun = (label: string, s: Summary): string =>
  `[failover] ${label}: unavailable for ${Math.round(s.windowMillis)} ms ` +
  `(Redis promoted a replica after ${Math.round(s.failoverMillis)} ms); ` +
  `busy: ${s.busy.ok} ok, ${s.busy.failed} failed, ${s.busy.degraded} degraded; ` +
  `other: ${s.other.ok} ok, ${s.other.failed} failed, ${s.other.degraded} degraded; ` +
  `slowest operation ${Math.round(s.maxLatencyMillis)} ms (${Math.round(s.maxNetLatencyMillis)} ms without stalls ` +
  `of the event loop; longest stall ${Math.round(s.longestStallMillis)} ms)`
