/**
 * The load driver of the fault-injection suite: N fibers (default 200) run a mix of keyspace
 * get/set, getOrCompute, rate-limit decisions and nonce claims against one mode Layer, while a
 * fault script (./faults.ts) breaks a real redis-server. Everything a run observes is recorded
 * (outcomes, latencies per phase, recovery time, security events, memory) and the invariants of
 * docs/outages.md are checked as it goes; a run returns a `Report` whose `violations` must be
 * empty.
 *
 * Instrumentation, not mocks: the Redis is real. The driver wraps the `DistributedCache`
 * service to see the mark of every result and where every value was written, and watches the
 * ioredis client (`set`, `sendCommand`) to know which values were handed to Redis, and when.
 * Every value written is unique, so a read can be traced to its write: a value that reaches
 * Redis by any path other than its own write, a value read from Redis that was never sent to
 * it (or was lost in a restart), and a fallback value read after the recovery that dropped it
 * are all wrong values.
 *
 * A near-cache keyspace takes part in the load: a second node (its own client, cache and tracking
 * connection, in the same mode) and the first both write versioned values to it (one write per key at
 * a time, the reply's arrival recorded) and read them through their near caches; `judgeNear` checks
 * every read once the fault's timeline is known.
 */
import { performance } from "node:perf_hooks"
import { setFlagsFromString } from "node:v8"
import { runInNewContext } from "node:vm"
import { Cause, Context, Duration, Effect, Exit, Fiber, FiberRef, HashSet, Layer, Logger, Option, Schema } from "effect"
import type { Redis } from "ioredis"
import {
  type Backend,
  CacheBackendUnavailable,
  type Cached,
  DistributedCache,
  type DistributedCacheService,
  explicitDegraded,
  Keyspace,
  RateLimiter,
  RedisClient,
  ReplayGuard,
  strictDistributed
} from "effect-failclosed"
import type { RedisServer } from "../support/RedisServer.js"
import type { Fault, FaultTimeline } from "./faults.js"
import { type LoopWatch, watchLoop } from "./stalls.js"

// ---------------------------------------------------------------------------------------------------------------------
// settings
// ---------------------------------------------------------------------------------------------------------------------

export type ModeName = "StrictDistributed" | "ExplicitDegraded"

export interface Settings {
  /** concurrent fibers */
  readonly fibers: number
  /** each fiber waits a random 0 .. 2 × this between two operations */
  readonly thinkMillis: number
  readonly commandTimeoutMillis: number
  readonly cooldownMillis: number
  readonly maxReconnectDelayMillis: number
  readonly connectTimeoutMillis: number
  /** load before the fault starts (also the warm-up: the heap is measured at its end) */
  readonly beforeMillis: number
  /** load after Redis is back */
  readonly afterMillis: number
  /** an operation may take this much longer than its commands' timeouts (event-loop lag of a shared machine) */
  readonly hangMarginMillis: number
  /** a call refused by the cooldown must settle within this */
  readonly fastMillis: number
  /** heap after the run may exceed heap before by this much */
  readonly heapMarginBytes: number
  /** recovery may take this much longer than cooldown + command timeout + reconnect delay */
  readonly recoveryMarginMillis: number
  /** seed of the operation mix */
  readonly seed: number
  /** operations the driver records at most (preallocated, so that its bookkeeping does not grow the heap) */
  readonly capacity: number
  /** `maxStaleness` of the near-cache keyspace */
  readonly nearMaxStalenessMillis: number
}

/** Short timeouts, a few seconds per fault: the CI variant. */
/** how much longer than `beforeMillis` a run waits for its first near hit before the fault */
const NEAR_WARM_UP_MILLIS = 5_000

export const ciSettings: Settings = {
  fibers: 200,
  thinkMillis: 20,
  commandTimeoutMillis: 200,
  cooldownMillis: 300,
  maxReconnectDelayMillis: 200,
  connectTimeoutMillis: 500,
  beforeMillis: 600,
  afterMillis: 1_200,
  hangMarginMillis: 150,
  fastMillis: 25,
  heapMarginBytes: 16 * 1024 * 1024,
  recoveryMarginMillis: 250,
  seed: 42,
  capacity: 500_000,
  nearMaxStalenessMillis: 500
}

// ---------------------------------------------------------------------------------------------------------------------
// report
// ---------------------------------------------------------------------------------------------------------------------

export const OP_KINDS = ["get", "set", "getOrCompute", "rateLimit", "claim", "nearGet", "nearSet"] as const
export type OpKind = (typeof OP_KINDS)[number]
export const PHASES = ["before", "during", "after"] as const
export type Phase = (typeof PHASES)[number]

export interface Outcomes {
  /** settled operations */
  readonly ops: number
  readonly ok: number
  /** failed with CacheBackendUnavailable */
  readonly unavailable: number
  /** any other failure */
  readonly other: number
  readonly defects: number
  /** succeeded with a result from the node-local fallback (ExplicitDegraded) */
  readonly degraded: number
}

export interface Latency {
  readonly p50: number
  readonly p99: number
  readonly max: number
}

export interface Report {
  readonly mode: ModeName
  readonly fault: string
  readonly description: string
  readonly settings: Settings
  readonly timeline: FaultTimeline & { readonly start: number; readonly end: number }
  readonly totals: Outcomes
  readonly byKind: Readonly<Record<OpKind, Outcomes>>
  readonly phases: Readonly<Record<Phase, Outcomes & Latency & { readonly millis: number }>>
  /** Redis back → first operation served by Redis again; undefined if none */
  readonly recoveryMillis: number | undefined
  /** slowest call refused by the cooldown (strict) */
  readonly cooldownMaxMillis: number | undefined
  /** single-command calls slower than fastMillis that failed or fell back */
  readonly slowUnavailable: number
  readonly events: { readonly startup: number; readonly runtime: number; readonly recovered: number }
  readonly memory: {
    readonly gcExposed: boolean
    readonly heapBefore: number
    readonly heapAfter: number
    readonly rssBefore: number
    readonly rssAfter: number
  }
  /** the longest interval during which the process ran no timer, and the sum of all such intervals */
  readonly stallMaxMillis: number
  readonly stallTotalMillis: number
  /** stalls of at least half the command timeout (each may cause an outage of its own) */
  readonly longStalls: number
  readonly unhandledRejections: number
  /** operations still running when the run was stopped, after waiting for them */
  readonly unsettled: number
  readonly opsPerSecond: number
  /**
   * operations settled per `millis` from `timeline.start` (whole buckets only), by the moment they settled: served by Redis, served by
   * the fallback (marked degraded), refused with CacheBackendUnavailable, anything else (for the pictures)
   */
  readonly buckets: {
    readonly millis: number
    readonly ok: ReadonlyArray<number>
    readonly degraded: ReadonlyArray<number>
    readonly unavailable: ReadonlyArray<number>
    readonly other: ReadonlyArray<number>
  }
  readonly near: NearFigures
  /** every broken invariant, with how often it was broken and one example */
  readonly violations: ReadonlyArray<string>
}

/**
 * What the near-cache keyspace saw. Two nodes (each its own client, cache and tracking connection, in the run's
 * mode) read and write its keys; every value carries a version (one write per key at a time, so a key's versions
 * increase in the order Redis applies its writes, except for a write whose fate is unknown).
 */
export interface NearFigures {
  readonly reads: number
  /** reads answered from a near cache (`near: true`) */
  readonly hits: number
  /** near hits of reads started before the fault or after Redis was back */
  readonly hitsOutsideFault: number
  readonly writes: number
  /** writes that failed or fell back: their value may still reach Redis, later than newer writes */
  readonly unknownFate: number
  /** the latest a near hit returned a version after a newer write of its key had completed (undefined: never) */
  readonly staleMaxMillis: number | undefined
  /** how late that may be: the invalidation bound */
  readonly boundMillis: number
  /** reads of a version of unknown fate not judged against a newer write (it may have reached Redis after it) */
  readonly exempt: number
}

// ---------------------------------------------------------------------------------------------------------------------
// instrumentation state
// ---------------------------------------------------------------------------------------------------------------------

const OUT_OK = 0
const OUT_UNAVAILABLE = 1
const OUT_COOLDOWN = 2
const OUT_OTHER = 3
const OUT_DEFECT = 4

const SEEN_REDIS = 1
const SEEN_FALLBACK = 2
const SEEN_LOCAL = 4
/** the operation ran on the second node */
const SEEN_NODE_B = 8

/** flags of a written value id */
const W_ALLOCATED = 1
/** its own write operation is in flight */
const W_PENDING = 2
/** handed to ioredis (`client.set`) by its own write */
const W_ISSUED = 4
/** written into the degraded fallback */
const W_FALLBACK = 8
/** handed to the connection (`sendCommand`), possibly after its write gave up waiting */
const W_SENT = 16

const KEYS = 64
const COMPUTED_KEYS = 16
const SUBJECTS = 16
const NEAR_KEYS = 32
/**
 * which near-cache key a write goes to: low keys often (versions race invalidations), high keys rarely (their copies
 * outlive a fault unless the near cache is emptied: a near cache that is not would serve what Redis lost)
 */
const nearWriteKey = (r: number): number => Math.min(NEAR_KEYS - 1, Math.floor(NEAR_KEYS * r * r * r))

/** a near-cache write: in flight, its reply arrived (written to Redis), or its fate is unknown (failed, fell back) */
const NW_PENDING = 1
const NW_DONE = 2
const NW_UNKNOWN = 3
/** a near-cache read: answered near, by Redis, marked degraded */
const NR_NEAR = 1
const NR_REDIS = 2
const NR_DEGRADED = 4

/**
 * How long after a newer write completed a near hit may still return the older version (check 2). A near hit is
 * served only with the answer to a PING sent at most maxStaleness before it; a PING sent after the write was applied
 * is answered after the write's invalidation (one socket, in order; at worst both leave Redis in the same event-loop
 * iteration). So maxStaleness after the write's reply no near hit may return the older version; the margin covers the
 * last Redis event-loop iteration and the microtasks between reading a PONG and the invalidation after it.
 */
export const nearBoundMillis = (s: Settings): number => s.nearMaxStalenessMillis + NEAR_BOUND_MARGIN_MILLIS
const NEAR_BOUND_MARGIN_MILLIS = 50
/** a near hit less than this after Redis went down beyond maxStaleness is not judged (signal delivery, clocks) */
const NEAR_DOWN_MARGIN_MILLIS = 20
/**
 * A write of unknown fate may still be applied while its command waits in a live connection (a paused or sleeping
 * Redis applies it when it runs again; no client re-sends after a reconnect): at the latest this long after it failed
 * or after Redis was back, whichever is later.
 */
const ZOMBIE_GRACE_MILLIS = 1_000

class Violations {
  readonly #byKind = new Map<string, { count: number; example: string }>()
  add(kind: string, example: string): void {
    const v = this.#byKind.get(kind)
    if (v === undefined) this.#byKind.set(kind, { count: 1, example })
    else v.count++
  }
  list(): Array<string> {
    return [...this.#byKind].map(([kind, v]) => `${kind} (${v.count}×), e.g. ${v.example}`)
  }
}

/** Per-operation context, visible to the service wrapper through a FiberRef (forks inherit it). */
interface OpContext {
  seen: number
  /** epoch (count of recoveries) when the operation started */
  readonly epoch: number
}

const currentOp = FiberRef.unsafeMake<OpContext | undefined>(undefined)

const Value = Schema.Struct({ w: Schema.Int, g: Schema.Int })
type Value = typeof Value.Type

const Entries = Keyspace.make({ name: "chaos", key: Schema.Int, value: Value, timeToLive: "1 minute" })
/** the near-cache keyspace: `k` its key, `v` a version (global, so increasing per key too) */
const NearValue = Schema.Struct({ k: Schema.Int, v: Schema.Int })
type NearValue = typeof NearValue.Type
const nearKeyspace = (maxStalenessMillis: number) =>
  Keyspace.make({
    name: "chaos-near",
    key: Schema.Int,
    value: NearValue,
    timeToLive: "1 minute",
    nearCache: { capacity: 256, maxStaleness: Duration.millis(maxStalenessMillis) }
  })
const Computed = Keyspace.make({ name: "chaos-computed", key: Schema.Int, value: Value, timeToLive: "250 millis" })
const Limiters = (["fixed-window", "sliding-window", "token-bucket"] as const).map((algorithm) =>
  RateLimiter.make({ name: `chaos-${algorithm}`, limit: 100, window: "1 second", algorithm })
)
const Nonces = ReplayGuard.make({ name: "chaos", window: "1 minute" })

const WRITE_ID = /"w":(\d+)/
const NEAR_ID = /"v":(\d+)/
const idOf = (pattern: RegExp, raw: unknown): number => {
  const text = typeof raw === "string" ? raw : Buffer.isBuffer(raw) ? raw.toString("utf8") : ""
  const match = pattern.exec(text)
  return match === null ? 0 : Number(match[1])
}

const gcFunction: (() => void) | undefined = (() => {
  const exposed = (globalThis as { gc?: () => void }).gc
  if (typeof exposed === "function") return exposed
  try {
    setFlagsFromString("--expose-gc")
    const gc = runInNewContext("gc") as unknown
    return typeof gc === "function" ? (gc as () => void) : undefined
  } catch {
    return undefined
  }
})()

const memory = () => {
  gcFunction?.()
  const m = process.memoryUsage()
  return { heap: m.heapUsed, rss: m.rss }
}

/** mulberry32 */
const prng = (seed: number) => {
  let a = seed >>> 0
  return (): number => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const BUCKET_MILLIS = 100

const percentile = (sorted: Float64Array, p: number): number =>
  sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!

/** how many store calls an operation makes one after the other (each bounded by the command timeout) */
const sequentialCommands: Record<OpKind, number> = {
  get: 1,
  set: 1,
  // on a miss: the lookup, the single-flight leader's re-read, the write of the computed value
  getOrCompute: 3,
  // one script per decision (EVALSHA, and EVAL after a restart emptied the script cache, in one call)
  rateLimit: 1,
  claim: 1,
  // a near hit makes none, a near miss one GET (the refill after an own write runs in the background)
  nearGet: 1,
  nearSet: 1
}

// ---------------------------------------------------------------------------------------------------------------------
// the run
// ---------------------------------------------------------------------------------------------------------------------

/**
 * Runs `fault` against `server` under load in `mode`. Never fails: what went wrong is in the
 * report's `violations`.
 */
export const runScenario = (
  server: RedisServer,
  mode: ModeName,
  fault: Fault,
  settings: Settings = ciSettings
): Effect.Effect<Report> =>
  Effect.suspend(() => {
    const s = settings
    const violations = new Violations()
    const capacity = s.capacity
    const opStart = new Float64Array(capacity)
    const opEnd = new Float64Array(capacity)
    const opKind = new Uint8Array(capacity)
    const opOutcome = new Uint8Array(capacity)
    const opSeen = new Uint8Array(capacity)
    const writeFlags = new Uint8Array(capacity)
    const writeSentAt = new Float64Array(capacity)
    const writeFallbackEpoch = new Int32Array(capacity)
    let ops = 0
    let started = 0
    let writes = 0
    let epoch = 0
    let generation = 0
    let nonce = 0
    let overflow = false
    let stopped = false
    const events = { startup: 0, runtime: 0, recovered: 0 }
    const eventTimes: Array<{ kind: string; at: number }> = []
    const killedAt: Array<number> = []
    /** when Redis stopped answering and when it was about to answer again (kills, pauses) */
    const downFrom: Array<number> = []
    const downTo: Array<number> = []

    // -- the near-cache keyspace: writes by version (index), reads in order
    const Near = nearKeyspace(s.nearMaxStalenessMillis)
    const nearCapacity = Math.max(1_024, Math.floor(capacity / 4))
    const nwKey = new Uint8Array(nearCapacity)
    const nwState = new Uint8Array(nearCapacity)
    /** when the value was handed to a connection (0: never) */
    const nwSentAt = new Float64Array(nearCapacity)
    /** when its reply arrived (NW_DONE) or it failed or fell back (NW_UNKNOWN) */
    const nwSettledAt = new Float64Array(nearCapacity)
    const nrKey = new Uint8Array(nearCapacity)
    /** 0: a miss */
    const nrVersion = new Int32Array(nearCapacity)
    const nrStart = new Float64Array(nearCapacity)
    const nrFlags = new Uint8Array(nearCapacity)
    const nearBusy = new Uint8Array(NEAR_KEYS)
    let nearWrites = 0
    let nearReads = 0
    /** near hits so far: the fault starts only after the first one (see the run) */
    let nearHitsSeen = 0
    /** the second node's security events (its breaker is its own: they are not the first node's events) */
    const eventsB = { runtime: 0, recovered: 0, other: 0 }

    const allocWrite = (): Value => {
      if (writes >= capacity - 1) overflow = true
      else writes++
      const w = writes
      writeFlags[w] = W_ALLOCATED
      return { w, g: generation }
    }

    // -- events, through Effect's Logger: the event object is message[0]
    const captureLogger = Logger.make(({ message }) => {
      const first: unknown = Array.isArray(message) ? message[0] : message
      if (typeof first !== "object" || first === null || !("event" in first)) return
      const kind = (first as { event: unknown }).event
      eventTimes.push({ kind: String(kind), at: performance.now() })
      if (kind === "BACKEND_UNAVAILABLE_AT_STARTUP") events.startup++
      else if (kind === "BACKEND_UNAVAILABLE_AT_RUNTIME") events.runtime++
      else if (kind === "BACKEND_RECOVERED") {
        events.recovered++
        // the fallback was dropped just before this event: values written into it before now are gone
        epoch++
      } else violations.add("unknown security event", String(kind))
    })

    // -- the service wrapper: checks the mark of every result, records where each value was written
    const seen = (backend: Backend): number =>
      backend === "redis" ? SEEN_REDIS : backend === "local_degraded" ? SEEN_FALLBACK : SEEN_LOCAL
    const checkMark = (operation: string, cached: Pick<Cached<unknown>, "backend" | "degraded">): void => {
      if (mode === "StrictDistributed" && (cached.backend !== "redis" || cached.degraded)) {
        violations.add("strict served from outside Redis", `${operation} → ${cached.backend}`)
      }
      if (mode === "ExplicitDegraded") {
        const marked = cached.backend === "local_degraded" && cached.degraded
        const redis = cached.backend === "redis" && !cached.degraded
        if (!marked && !redis) {
          violations.add("unmarked or mismarked result", `${operation} → ${cached.backend}/${cached.degraded}`)
        }
      }
    }
    let cooldownMax: number | undefined
    const slowRefusals: Array<SlowRefusal> = []
    const note = <A extends Cached<unknown>>(operation: string, effect: Effect.Effect<A, CacheBackendUnavailable>) =>
      Effect.flatMap(FiberRef.get(currentOp), (ctx) => {
        const startedAt = performance.now()
        return Effect.tapBoth(effect, {
          onSuccess: (cached) =>
            Effect.sync(() => {
              checkMark(operation, cached)
              if (ctx !== undefined) ctx.seen |= seen(cached.backend)
            }),
          onFailure: (error) =>
            Effect.sync(() => {
              // a call refused by the cooldown does not wait
              if (error.reason.startsWith("cooldown")) {
                const endedAt = performance.now()
                const latency = endedAt - startedAt
                // judged after the run: a stall is only known once the process runs again
                if (latency <= s.fastMillis) cooldownMax = Math.max(cooldownMax ?? 0, latency)
                else if (slowRefusals.length < 10_000) slowRefusals.push({ operation, startedAt, endedAt })
              }
            })
        })
      })
    const wrap = (svc: DistributedCacheService): DistributedCacheService => ({
      ...svc,
      get: (key) => note("get", svc.get(key)),
      set: (key, value, ttl) => {
        const w = idOf(WRITE_ID, value)
        if (w > 0) writeFlags[w] = writeFlags[w]! | W_PENDING
        // a near-cache value: its write is done when Redis' reply arrives
        const nv = idOf(NEAR_ID, value)
        return note("set", svc.set(key, value, ttl)).pipe(
          Effect.tap((cached) =>
            Effect.sync(() => {
              if (w > 0 && cached.backend === "local_degraded") {
                writeFlags[w] = writeFlags[w]! | W_FALLBACK
                writeFallbackEpoch[w] = epoch
              }
              if (nv > 0 && cached.backend === "redis" && nwState[nv] === NW_PENDING) {
                nwState[nv] = NW_DONE
                nwSettledAt[nv] = performance.now()
              }
            })
          ),
          Effect.ensuring(
            Effect.sync(() => {
              if (w > 0) writeFlags[w] = writeFlags[w]! & ~W_PENDING
              if (nv > 0 && nwState[nv] === NW_PENDING) {
                nwState[nv] = NW_UNKNOWN
                nwSettledAt[nv] = performance.now()
              }
            })
          )
        )
      },
      claim: (key, ttl) => note("claim", svc.claim(key, ttl)),
      rateLimit: (request) => note("rateLimit", svc.rateLimit(request))
    })

    // -- what Redis is sent: a value of ours is handed to ioredis only by its own write, while that write is in
    // flight; ioredis may send it later (auto-pipelining queues commands while a pipeline is in flight)
    const writeIdOf = (raw: unknown): number => idOf(WRITE_ID, raw)
    const watchClient = (client: Redis) => {
      const originalSet = client.set
      const originalSend = client.sendCommand
      client.set = function (this: Redis, ...args: Array<unknown>) {
        const w = writeIdOf(args[1])
        if (w > 0) {
          if ((writeFlags[w]! & W_PENDING) === 0) violations.add("a value was written outside its own write", `${w}`)
          else writeFlags[w] = writeFlags[w]! | W_ISSUED
        }
        return (originalSet as (...a: Array<unknown>) => unknown).apply(this, args)
      } as Redis["set"]
      client.sendCommand = function (this: Redis, ...args: Parameters<Redis["sendCommand"]>) {
        const command = args[0] as { name?: string; args?: ReadonlyArray<unknown> }
        // the store writes a SET as its own command (internal/redis/send): its value is issued by its write here,
        // and must be in flight, as a SET must be when it is issued
        for (const arg of command.args ?? []) {
          const w = writeIdOf(arg)
          if (w === 0) continue
          if (command.name === "set" && (writeFlags[w]! & W_ISSUED) === 0) {
            if ((writeFlags[w]! & W_PENDING) === 0) violations.add("a value was written outside its own write", `${w}`)
            else writeFlags[w] = writeFlags[w]! | W_ISSUED
          }
          if ((writeFlags[w]! & W_ISSUED) === 0) violations.add("a value reached Redis by another path", `${w}`)
          writeFlags[w] = writeFlags[w]! | W_SENT
          writeSentAt[w] = performance.now()
        }
        return originalSend.apply(this, args)
      } as Redis["sendCommand"]
      return Effect.sync(() => {
        client.set = originalSet
        client.sendCommand = originalSend
      })
    }

    /** a value read from the cache: where it claims to come from must be where it can be */
    const checkRead = (what: string, ctx: OpContext, cached: Cached<Value>, startedAt: number): void => {
      checkMark(what, cached)
      const w = cached.value.w
      const flags = writeFlags[w] ?? 0
      if (w <= 0 || w > writes || (flags & W_ALLOCATED) === 0) {
        violations.add("read a value nobody wrote", `${what} → ${w}`)
        return
      }
      if (cached.backend === "redis") {
        if ((flags & W_SENT) === 0) {
          violations.add("read from Redis a value never sent to Redis", `${what} → value ${w}`)
        }
        // a redis-server that was killed comes back empty: a read that started after the kill can only see
        // values sent to Redis after it
        let lastKill = -Infinity
        for (const k of killedAt) if (k <= startedAt) lastKill = k
        if (writeSentAt[w]! < lastKill) violations.add("read a value Redis lost in a restart", `${what} → value ${w}`)
      } else if (cached.backend === "local_degraded") {
        if ((flags & W_FALLBACK) === 0) {
          violations.add("read from the fallback a value never written to it", `${what} → value ${w}`)
        } else if (writeFallbackEpoch[w]! < ctx.epoch) {
          violations.add("read from the fallback a value dropped at recovery", `${what} → value ${w}`)
        }
      }
    }

    // -- when each near-cache value is handed to a connection (either node's): only by its own write, once
    const watchNearSends = (client: Redis) => {
      const originalSend = client.sendCommand
      client.sendCommand = function (this: Redis, ...args: Parameters<Redis["sendCommand"]>) {
        const command = args[0] as { name?: string; args?: ReadonlyArray<unknown> }
        for (const arg of command.args ?? []) {
          const v = idOf(NEAR_ID, arg)
          if (v === 0) continue
          if (command.name !== "set" || v > nearWrites || nwState[v] !== NW_PENDING || nwSentAt[v] !== 0) {
            violations.add("a near-cache value was sent outside its own write", `${command.name} of version ${v}`)
          } else nwSentAt[v] = performance.now()
        }
        return originalSend.apply(this, args)
      } as Redis["sendCommand"]
      return Effect.sync(() => {
        client.sendCommand = originalSend
      })
    }

    /** a near-cache read (either node): what can be checked at once; the rest is judged after the run */
    const checkNearRead = (k: number, o: Option.Option<Cached<NearValue>>, startedAt: number): void => {
      if (nearReads >= nearCapacity - 1) {
        overflow = true
        return
      }
      const i = nearReads++
      nrKey[i] = k
      nrStart[i] = startedAt
      if (Option.isNone(o)) {
        nrVersion[i] = 0
        nrFlags[i] = 0
        return
      }
      const c = o.value
      checkMark("near get", c)
      const v = c.value.v
      nrVersion[i] = v
      nrFlags[i] = (c.near ? NR_NEAR : 0) | (c.backend === "redis" ? NR_REDIS : 0) | (c.degraded ? NR_DEGRADED : 0)
      if (c.near) nearHitsSeen++
      // (1) never invented: a version of this key whose write had started
      if (c.value.k !== k || v <= 0 || v > nearWrites || nwKey[v] !== k || nwState[v] === 0) {
        violations.add("near keyspace read a value nobody wrote", `key ${k} → ${JSON.stringify(c.value)}`)
        nrVersion[i] = 0
        return
      }
      if (c.near && (c.backend !== "redis" || c.degraded)) {
        violations.add("near hit marked as another backend", `key ${k} → ${c.backend}/${c.degraded}`)
      }
      if (c.backend === "redis" && nwSentAt[v] === 0) {
        violations.add("near keyspace read from Redis a value never sent to it", `key ${k} → version ${v}`)
      }
    }

    /**
     * The near-cache reads judged once the timeline is known. Per read of version u of key k that started at t:
     * (2) a near hit never returns u when a newer write of k completed more than the bound before t (a read from Redis
     * never when one completed before t), (3) no near hit starts while Redis has been down for longer than
     * maxStaleness, (4) no near hit returns a value sent to a Redis that was killed more than the bound before t.
     */
    const judgeNear = (t: Report["timeline"]): NearFigures => {
      const bound = nearBoundMillis(s)
      // the completed writes of each key, in version order: also the order of their replies (one write at a time)
      const done: Array<Array<number>> = Array.from({ length: NEAR_KEYS }, () => [])
      let unknownFate = 0
      for (let v = 1; v <= nearWrites; v++) {
        if (nwState[v] === NW_DONE) done[nwKey[v]!]!.push(v)
        else if (nwState[v] === NW_UNKNOWN) unknownFate++
      }
      let hits = 0
      let hitsOutsideFault = 0
      let staleMax: number | undefined
      let exempt = 0
      for (let i = 0; i < nearReads; i++) {
        const u = nrVersion[i]!
        if (u === 0) continue
        const started = nrStart[i]!
        const flags = nrFlags[i]!
        const near = (flags & NR_NEAR) !== 0
        if (near) {
          hits++
          if (started < t.startedAt || started >= t.backAt) hitsOutsideFault++
        }
        // a degraded read answers from the node's fallback: only (1) applies
        if ((flags & NR_REDIS) === 0) continue
        // (2) the first completed write of the key newer than u (the one that made u stale)
        const list = done[nrKey[i]!]!
        let lo = 0
        let hi = list.length
        while (lo < hi) {
          const mid = (lo + hi) >>> 1
          if (list[mid]! <= u) lo = mid + 1
          else hi = mid
        }
        if (lo < list.length) {
          const newer = list[lo]!
          const completed = nwSettledAt[newer]!
          if (completed < started) {
            const lag = started - completed
            const mayLandLater =
              nwState[u] === NW_UNKNOWN && completed <= Math.max(nwSettledAt[u]!, t.backAt) + ZOMBIE_GRACE_MILLIS
            if (mayLandLater) exempt++
            else if (near) {
              staleMax = Math.max(staleMax ?? 0, lag)
              if (lag > bound) {
                violations.add(
                  "near hit older than the invalidation bound allows",
                  `key ${nrKey[i]}: version ${u} served ${lag.toFixed(0)} ms > ${bound} ms after version ${newer} was written`
                )
              }
            } else {
              violations.add(
                "read from Redis older than a write completed before it",
                `key ${nrKey[i]}: version ${u}, ${lag.toFixed(0)} ms after version ${newer} was written`
              )
            }
          }
        }
        if (!near) continue
        // (3) fail closed: no proof of coherence while Redis does not answer
        for (let d = 0; d < downFrom.length; d++) {
          const from = downFrom[d]! + s.nearMaxStalenessMillis + NEAR_DOWN_MARGIN_MILLIS
          if (started > from && started < (downTo[d] ?? t.backAt)) {
            violations.add(
              "near hit while Redis was down for longer than maxStaleness",
              `key ${nrKey[i]}: ${(started - downFrom[d]!).toFixed(0)} ms after Redis went down`
            )
          }
        }
        // (4) a restart empties Redis: what it held before is not served near after the bound
        for (const killed of killedAt) {
          if (nwSentAt[u]! < killed && killed <= started - bound) {
            violations.add(
              "near hit of a value lost in a restart",
              `key ${nrKey[i]}: version ${u}, ${(started - killed).toFixed(0)} ms after the kill`
            )
          }
        }
      }
      return {
        reads: nearReads,
        hits,
        hitsOutsideFault,
        writes: nearWrites,
        unknownFate,
        staleMaxMillis: staleMax,
        boundMillis: bound,
        exempt
      }
    }

    const random = prng(s.seed)
    const loop = watchLoop()

    return Effect.gen(function* () {
      const redis = yield* RedisClient
      yield* Effect.acquireRelease(
        Effect.sync(() => watchClient(redis.client as Redis)),
        (restore) => restore
      )
      const cache = yield* DistributedCache
      yield* Effect.acquireRelease(
        Effect.sync(() => watchNearSends(redis.client as Redis)),
        (restore) => restore
      )

      // ---- the second node: its own client and cache in the same mode, for the near-cache keyspace only; its
      // events go to a logger of their own (its breaker sees the outage too, and must report it once)
      const nodeB = yield* Layer.build(Layer.fresh(modeLayer(server, mode, s, wrap)))
      const redisB = Context.get(nodeB, RedisClient)
      yield* Effect.acquireRelease(
        Effect.sync(() => watchNearSends(redisB.client as Redis)),
        (restore) => restore
      )
      const loggersB = HashSet.make(
        Logger.make(({ message }) => {
          const first: unknown = Array.isArray(message) ? message[0] : message
          if (typeof first !== "object" || first === null || !("event" in first)) return
          const kind = (first as { event: unknown }).event
          if (kind === "BACKEND_UNAVAILABLE_AT_RUNTIME") eventsB.runtime++
          else if (kind === "BACKEND_RECOVERED") eventsB.recovered++
          else eventsB.other++
        })
      )
      /** runs a near-cache operation on the first node or the second */
      const onNode = <A, E>(ctx: OpContext, effect: Effect.Effect<A, E, DistributedCache>): Effect.Effect<A, E> => {
        if (random() < 0.5) return Effect.provideService(effect, DistributedCache, cache)
        ctx.seen |= SEEN_NODE_B
        return Effect.locally(Effect.provide(effect, nodeB), FiberRef.currentLoggers, loggersB)
      }

      // ---- operations
      const operation = (kind: OpKind, ctx: OpContext, startedAt: number): Effect.Effect<void, unknown, never> => {
        const pick = (n: number) => Math.floor(random() * n)
        switch (kind) {
          case "get":
            return Entries.get(pick(KEYS)).pipe(
              Effect.map((o) => {
                if (Option.isSome(o)) checkRead("get", ctx, o.value, startedAt)
              }),
              Effect.provideService(DistributedCache, cache)
            )
          case "set":
            return Effect.provideService(Entries.set(pick(KEYS), allocWrite()), DistributedCache, cache)
          case "getOrCompute":
            return Computed.getOrCompute(pick(COMPUTED_KEYS), Effect.sync(allocWrite)).pipe(
              Effect.map((c) => checkRead("getOrCompute", ctx, c, startedAt)),
              Effect.provideService(DistributedCache, cache)
            )
          case "rateLimit":
            return Limiters[pick(Limiters.length)]!.consume(`subject-${pick(SUBJECTS)}`).pipe(
              Effect.map((decision) => checkMark("consume", decision)),
              Effect.provideService(DistributedCache, cache)
            )
          case "claim":
            // every nonce is fresh: a ReplayDetected is a wrong answer (counted as another failure)
            return Nonces.claim(`nonce-${++nonce}`).pipe(
              Effect.map((claimed) => checkMark("claim", claimed)),
              Effect.provideService(DistributedCache, cache)
            )
          case "nearSet": {
            // one write per key at a time: a key's versions reach Redis in order (a key in use: another one)
            let k = nearWriteKey(random())
            for (let tries = 0; nearBusy[k] === 1 && tries < NEAR_KEYS; tries++) k = (k + 1) % NEAR_KEYS
            if (nearBusy[k] === 1 || nearWrites >= nearCapacity - 1) {
              if (nearWrites >= nearCapacity - 1) overflow = true
              return nearGet(ctx, pick(NEAR_KEYS), startedAt)
            }
            const v = ++nearWrites
            nwKey[v] = k
            nwState[v] = NW_PENDING
            nearBusy[k] = 1
            return onNode(ctx, Near.set(k, { k, v })).pipe(
              Effect.ensuring(
                Effect.sync(() => {
                  nearBusy[k] = 0
                })
              )
            )
          }
          case "nearGet":
            return nearGet(ctx, pick(NEAR_KEYS), startedAt)
        }
      }
      const nearGet = (ctx: OpContext, k: number, startedAt: number) =>
        onNode(ctx, Near.get(k)).pipe(Effect.map((o) => checkNearRead(k, o, startedAt)))

      const weights: ReadonlyArray<readonly [OpKind, number]> = [
        ["get", 0.28],
        ["set", 0.16],
        ["getOrCompute", 0.16],
        ["rateLimit", 0.12],
        ["claim", 0.08],
        ["nearGet", 0.17],
        ["nearSet", 0.03]
      ]
      const pickKind = (): OpKind => {
        let r = random()
        for (const [k, w] of weights) {
          if ((r -= w) < 0) return k
        }
        return "get"
      }

      const classify = (exit: Exit.Exit<void, unknown>): number => {
        if (Exit.isSuccess(exit)) return OUT_OK
        const failure = Cause.failureOption(exit.cause)
        if (Option.isSome(failure)) {
          const error = failure.value
          if (error instanceof CacheBackendUnavailable)
            return error.reason.startsWith("cooldown") ? OUT_COOLDOWN : OUT_UNAVAILABLE
          return OUT_OTHER
        }
        return Cause.isInterruptedOnly(exit.cause) ? OUT_OTHER : OUT_DEFECT
      }

      const one: Effect.Effect<void> = Effect.suspend(() => {
        const kind = pickKind()
        const ctx: OpContext = { seen: 0, epoch }
        const startedAt = performance.now()
        started++
        return operation(kind, ctx, startedAt).pipe(
          Effect.locally(currentOp, ctx),
          Effect.exit,
          Effect.map((exit) => {
            const endedAt = performance.now()
            const outcome = classify(exit)
            if (outcome === OUT_DEFECT || outcome === OUT_OTHER) {
              violations.add(
                outcome === OUT_DEFECT ? "defect" : "failure other than CacheBackendUnavailable",
                `${kind}: ${Exit.isFailure(exit) ? Cause.pretty(exit.cause).split("\n")[0] : ""}`
              )
            }
            if (ops >= capacity) {
              overflow = true
              return
            }
            const i = ops++
            opStart[i] = startedAt
            opEnd[i] = endedAt
            opKind[i] = OP_KINDS.indexOf(kind)
            opOutcome[i] = outcome
            opSeen[i] = ctx.seen
          })
        )
      })

      // A fiber is not preempted inside an operation (it yields at every await and between operations anyway):
      // with 200 fibers, a preempted fiber would wait for all the others, and a synchronous path such as a
      // cooldown refusal would be measured as the time the other fibers take.
      const worker = Effect.suspend(() =>
        Effect.whileLoop({
          while: () => !stopped,
          body: () => Effect.zipRight(one, Effect.sleep(random() * 2 * s.thinkMillis)),
          step: () => {}
        })
      ).pipe(Effect.withMaxOpsBeforeYield(1_000_000))

      // ---- the timeline
      const unhandled = { count: 0 }
      const onUnhandled = () => {
        unhandled.count++
      }
      process.on("unhandledRejection", onUnhandled)
      yield* Effect.addFinalizer(() => Effect.sync(() => process.off("unhandledRejection", onUnhandled)))

      const start = performance.now()
      const workers = yield* Effect.fork(
        Effect.forEach(Array.from({ length: s.fibers }), () => worker, { concurrency: "unbounded", discard: true })
      )
      yield* Effect.sleep(s.beforeMillis)
      // The near cache serves once its tracking connection has answered a heartbeat: on a loaded machine that can
      // take longer than the phase before the fault, and a run without a near hit before the fault checks nothing
      // about it. Wait for the first one (bounded: a near cache that never serves fails the run's assertion).
      while (nearHitsSeen === 0 && performance.now() - start < s.beforeMillis + NEAR_WARM_UP_MILLIS) {
        yield* Effect.sleep("20 millis")
      }
      // heap after a full GC, with the load warmed up and running (as it will be at the end)
      const before = memory()

      generation++
      const timeline = yield* Effect.promise(() =>
        fault.run(server, {
          killed: (at) => killedAt.push(at),
          down: (at) => downFrom.push(at),
          up: (at) => downTo.push(at)
        })
      )
      generation++

      yield* Effect.sleep(s.afterMillis)
      const after = memory()
      stopped = true
      const settleMillis = s.commandTimeoutMillis * 3 + s.hangMarginMillis + s.thinkMillis * 2 + 1_000
      const joined = yield* Fiber.join(workers).pipe(Effect.timeout(settleMillis), Effect.option)
      if (Option.isNone(joined)) {
        violations.add("operations did not settle", `still running ${settleMillis} ms after the load stopped`)
        yield* Fiber.interrupt(workers)
      }
      const end = performance.now()
      loop.stop()
      const unsettled = started - ops

      // ---- the final read: once Redis serves again, every key read through the cache equals what Redis holds
      let lastStoreKey = ""
      let lastBackend: Backend = "redis"
      const spy: DistributedCacheService = {
        ...cache,
        get: (key) => {
          lastStoreKey = key
          return Effect.tap(cache.get(key), (c) => {
            lastBackend = c.backend
          })
        }
      }
      /** true when settled (equal, or a violation recorded), false when Redis did not serve it yet */
      const finalRead = (k: number) =>
        Effect.gen(function* () {
          const viaCache = yield* Entries.get(k).pipe(Effect.provideService(DistributedCache, spy), Effect.either)
          if (viaCache._tag === "Left") {
            if (viaCache.left._tag === "CacheBackendUnavailable") return false
            violations.add("final read failed", `key ${k}: ${viaCache.left._tag}`)
            return true
          }
          // a miss carries no mark in the Keyspace API: where it came from is the service's answer
          if (lastBackend !== "redis") return false
          const got = Option.getOrUndefined(viaCache.right)
          const raw = yield* Effect.promise(() =>
            (redis.client as Redis).get(lastStoreKey).then(
              (r) => ({ ok: true as const, r }),
              () => ({ ok: false as const })
            )
          )
          if (!raw.ok) return false
          const expected = raw.r === null ? undefined : (JSON.parse(raw.r) as Value).w
          if (got?.value.w !== expected) {
            violations.add("final read differs from what Redis holds", `key ${k}: ${got?.value.w} vs ${expected}`)
          }
          return true
        })
      let unread = Array.from({ length: KEYS }, (_, k) => k)
      const readDeadline =
        performance.now() + s.cooldownMillis + s.commandTimeoutMillis + s.maxReconnectDelayMillis + 3_000
      while (unread.length > 0 && performance.now() < readDeadline) {
        const next: Array<number> = []
        for (const k of unread) if (!(yield* finalRead(k))) next.push(k)
        unread = next
        if (unread.length > 0) yield* Effect.sleep(25)
      }
      if (unread.length > 0) {
        violations.add("final read not served by Redis", `${unread.length} keys, Redis up for seconds`)
      }
      // the second node is served by Redis again too (its recovery event is logged by then): a key never written is
      // never kept near, so its read goes to Redis
      let servedB = false
      while (!servedB && performance.now() < readDeadline) {
        const ctx: OpContext = { seen: 0, epoch }
        const read = yield* Near.get(NEAR_KEYS).pipe(
          Effect.provide(nodeB),
          Effect.locally(FiberRef.currentLoggers, loggersB),
          Effect.locally(currentOp, ctx),
          Effect.either
        )
        servedB = read._tag === "Right" && (ctx.seen & SEEN_REDIS) !== 0
        if (!servedB) yield* Effect.sleep(25)
      }
      if (!servedB) violations.add("second node: final read not served by Redis", "Redis up for seconds")

      const near = judgeNear({ ...timeline, start, end })
      return summarise({
        mode,
        fault,
        settings: s,
        timeline: { ...timeline, start, end },
        near,
        eventsB,
        n: ops,
        opStart,
        opEnd,
        opKind,
        opOutcome,
        opSeen,
        events,
        eventTimes,
        memory: {
          gcExposed: gcFunction !== undefined,
          heapBefore: before.heap,
          heapAfter: after.heap,
          rssBefore: before.rss,
          rssAfter: after.rss
        },
        loop,
        unhandledRejections: unhandled.count,
        unsettled,
        overflow,
        cooldownMaxMillis: cooldownMax,
        slowRefusals,
        violations
      })
    }).pipe(
      Effect.provide(modeLayer(server, mode, s, wrap)),
      Effect.provide(Logger.replace(Logger.defaultLogger, captureLogger)),
      Effect.scoped,
      Effect.ensuring(Effect.sync(() => loop.stop())),
      Effect.orDie
    )
  })

const modeLayer = (
  server: RedisServer,
  mode: ModeName,
  s: Settings,
  wrap: (svc: DistributedCacheService) => DistributedCacheService
) => {
  const client = RedisClient.layer({
    url: server.url,
    commandTimeout: s.commandTimeoutMillis,
    connectTimeout: s.connectTimeoutMillis,
    maxReconnectDelay: s.maxReconnectDelayMillis
  })
  const cache =
    mode === "StrictDistributed"
      ? strictDistributed({ cooldown: s.cooldownMillis })
      : explicitDegraded({ cooldown: s.cooldownMillis })
  // the wrapper spreads the service: its near caches' tracking connection comes along (the near hits asserted in
  // chaos.test.ts fail if it does not)
  const wrapped = Layer.effect(DistributedCache, Effect.map(DistributedCache, wrap)).pipe(Layer.provide(cache))
  return Layer.provideMerge(wrapped, client)
}

// ---------------------------------------------------------------------------------------------------------------------
// aggregate figures and invariants
// ---------------------------------------------------------------------------------------------------------------------

interface Raw {
  readonly mode: ModeName
  readonly fault: Fault
  readonly settings: Settings
  readonly timeline: Report["timeline"]
  readonly near: NearFigures
  /** the second node's events */
  readonly eventsB: { readonly runtime: number; readonly recovered: number; readonly other: number }
  readonly n: number
  readonly opStart: Float64Array
  readonly opEnd: Float64Array
  readonly opKind: Uint8Array
  readonly opOutcome: Uint8Array
  readonly opSeen: Uint8Array
  readonly events: Report["events"]
  readonly eventTimes: ReadonlyArray<{ kind: string; at: number }>
  readonly memory: Report["memory"]
  readonly loop: LoopWatch
  readonly unhandledRejections: number
  readonly unsettled: number
  readonly overflow: boolean
  readonly cooldownMaxMillis: number | undefined
  readonly slowRefusals: ReadonlyArray<SlowRefusal>
  readonly violations: Violations
}

interface SlowRefusal {
  readonly operation: string
  readonly startedAt: number
  readonly endedAt: number
}

class Counter {
  ops = 0
  ok = 0
  unavailable = 0
  other = 0
  defects = 0
  degraded = 0
  add(outcome: number, seen: number): void {
    this.ops++
    if (outcome === OUT_OK) {
      this.ok++
      if ((seen & SEEN_FALLBACK) !== 0) this.degraded++
    } else if (outcome === OUT_UNAVAILABLE || outcome === OUT_COOLDOWN) this.unavailable++
    else if (outcome === OUT_DEFECT) this.defects++
    else this.other++
  }
  get outcomes(): Outcomes {
    return {
      ops: this.ops,
      ok: this.ok,
      unavailable: this.unavailable,
      other: this.other,
      defects: this.defects,
      degraded: this.degraded
    }
  }
}

const summarise = (raw: Raw): Report => {
  const { n, opEnd, opKind, opOutcome, opSeen, opStart, settings: s, timeline: t } = raw
  const v = raw.violations
  const phaseOf = (at: number): number => (at < t.startedAt ? 0 : at < t.backAt ? 1 : 2)
  const totals = new Counter()
  const byKind = OP_KINDS.map(() => new Counter())
  const phases = PHASES.map(() => new Counter())
  const phaseLatencies: Array<Array<number>> = PHASES.map(() => [])
  let recoveryEnd = Infinity
  let slowUnavailable = 0
  let slowUnavailableB = 0
  const outageMillis = t.backAt - t.startedAt
  const bucketCount = Math.max(1, Math.floor((t.end - t.start) / BUCKET_MILLIS))
  const buckets = [0, 1, 2, 3].map(() => new Uint32Array(bucketCount))

  for (let i = 0; i < n; i++) {
    const start = opStart[i]!
    const end = opEnd[i]!
    const latency = end - start
    const kind = OP_KINDS[opKind[i]!]!
    const outcome = opOutcome[i]!
    const seen = opSeen[i]!
    const phase = phaseOf(start)
    totals.add(outcome, seen)
    byKind[opKind[i]!]!.add(outcome, seen)
    phases[phase]!.add(outcome, seen)
    phaseLatencies[phase]!.push(latency)
    const bucket = Math.floor((end - t.start) / BUCKET_MILLIS)
    const series =
      outcome === OUT_OK
        ? (seen & SEEN_FALLBACK) === 0
          ? 0
          : 1
        : outcome === OUT_UNAVAILABLE || outcome === OUT_COOLDOWN
          ? 2
          : 3
    if (bucket < bucketCount) buckets[series]![bucket]!++

    // no operation hangs: it settles within its commands' timeouts of its start, plus the margin, plus however
    // late the event loop ran timers at that deadline (a busy or starved process runs every timer late)
    const budget = s.commandTimeoutMillis * sequentialCommands[kind]
    if (latency > budget + s.hangMarginMillis) {
      const deadline = start + budget
      const timersRanAt = Math.max(deadline, raw.loop.firstTickAfter(deadline))
      // and the stalls after that (intervals in which the process ran nothing at all)
      const stalled = raw.loop.stalledWithin(timersRanAt, end)
      if (end > timersRanAt + stalled + s.hangMarginMillis) {
        v.add(
          "operation slower than its timeouts allow",
          `${kind} took ${latency.toFixed(0)} ms > ${budget} + ${s.hangMarginMillis} ms ` +
            `(timers ran ${(timersRanAt - deadline).toFixed(0)} ms late at its deadline, then ${stalled.toFixed(0)} ms of stalls)`
        )
      }
    }
    // calls that waited (the event loop turned meanwhile) for an unavailable Redis
    const unavailableOrFallback =
      outcome === OUT_UNAVAILABLE || outcome === OUT_COOLDOWN || (seen & SEEN_FALLBACK) !== 0
    if (
      kind !== "getOrCompute" &&
      unavailableOrFallback &&
      latency > s.fastMillis &&
      raw.loop.turnedWithin(start, end)
    ) {
      if ((seen & SEEN_NODE_B) === 0) slowUnavailable++
      else slowUnavailableB++
    }
    // degraded: get/set (and everything else) never fail
    if (raw.mode === "ExplicitDegraded" && outcome !== OUT_OK) {
      v.add("ExplicitDegraded operation failed", `${kind} (outcome ${outcome})`)
    }
    // first success served by Redis after Redis is back
    if (end >= t.backAt && outcome === OUT_OK && (seen & ~SEEN_NODE_B) === SEEN_REDIS && end < recoveryEnd) {
      recoveryEnd = end
    }
  }

  // a call refused by the cooldown does not wait: it is synchronous (a slow one without a turn of the event loop
  // inside was descheduled, not waiting), and fast
  let cooldownMax = raw.cooldownMaxMillis
  for (const r of raw.slowRefusals) {
    if (!raw.loop.turnedWithin(r.startedAt, r.endedAt)) continue
    const latency = r.endedAt - r.startedAt
    cooldownMax = Math.max(cooldownMax ?? 0, latency)
    v.add("cooldown refusal waited", `${r.operation} took ${latency.toFixed(1)} ms`)
  }

  const phaseReport = (i: number) => {
    const sorted = Float64Array.from(phaseLatencies[i]!).sort()
    const from = i === 0 ? t.start : i === 1 ? t.startedAt : t.backAt
    const to = i === 0 ? t.startedAt : i === 1 ? t.backAt : t.end
    return {
      ...phases[i]!.outcomes,
      millis: to - from,
      p50: percentile(sorted, 50),
      p99: percentile(sorted, 99),
      max: sorted.length === 0 ? 0 : sorted[sorted.length - 1]!
    }
  }

  const recoveryMillis = recoveryEnd === Infinity ? undefined : recoveryEnd - t.backAt
  const recoveryBound = s.cooldownMillis + s.commandTimeoutMillis + s.maxReconnectDelayMillis + s.recoveryMarginMillis
  if (recoveryMillis === undefined) v.add("traffic did not resume", "no operation served by Redis after it came back")
  else {
    const stalled = raw.loop.stalledWithin(t.backAt, recoveryEnd)
    if (recoveryMillis - stalled > recoveryBound) {
      v.add(
        "traffic resumed late",
        `${recoveryMillis.toFixed(0)} ms (${stalled.toFixed(0)} ms of it stalled) after Redis was back > ${recoveryBound} ms`
      )
    }
  }

  // A stall of the process itself (no CPU) as long as a good part of the command timeout lets command timers
  // fire before the answers are read: from inside the process that is an outage too, with its own events.
  const longStalls = raw.loop.stallsOfAtLeast(s.commandTimeoutMillis / 2)
  const spurious = longStalls.length
  const spuriousBeforeFault = longStalls.filter(([from]) => from < t.startedAt).length
  const e = raw.events
  const runtimeBeforeFault = raw.eventTimes.filter(
    (x) => x.at < t.startedAt && x.kind === "BACKEND_UNAVAILABLE_AT_RUNTIME"
  ).length
  if (runtimeBeforeFault > spuriousBeforeFault) {
    v.add("runtime event before the fault", `${runtimeBeforeFault} event(s), ${spuriousBeforeFault} long stall(s)`)
  }
  if (e.startup !== 0) v.add("startup event with Redis up at startup", `${e.startup}`)
  if (e.runtime < 1) v.add("outage without BACKEND_UNAVAILABLE_AT_RUNTIME", "0 events")
  if (e.recovered !== e.runtime) {
    v.add("runtime and recovery events do not pair up", `${e.runtime} runtime, ${e.recovered} recovered`)
  }
  if (t.downs === 1 && e.runtime > 1 + spurious) {
    v.add("more than one runtime event for one outage", `${e.runtime}, ${spurious} long stall(s)`)
  }
  if (e.runtime > t.downs + spurious) {
    v.add("more runtime events than outages", `${e.runtime} events, ${t.downs} outages, ${spurious} long stall(s)`)
  }

  // the second node's breaker: one runtime event at most per outage (or long stall), each paired with a recovery
  const b = raw.eventsB
  if (b.other > 0) v.add("second node: startup or unknown event", `${b.other}`)
  if (b.recovered !== b.runtime) {
    v.add("second node: runtime and recovery events do not pair up", `${b.runtime} runtime, ${b.recovered} recovered`)
  }
  if (b.runtime > t.downs + spurious) {
    v.add("second node: more runtime events than outages", `${b.runtime} events, ${t.downs} outages`)
  }

  // the cooldown works: only calls in flight when Redis went down, and probes, wait for Redis (on each node)
  const probes = Math.ceil(outageMillis / s.cooldownMillis) + e.runtime + 1 + spurious
  const slowBound = s.fibers * Math.max(1, e.runtime) + probes
  if (slowUnavailable > slowBound) {
    v.add("calls kept waiting for an unavailable Redis", `${slowUnavailable} slow calls > ${slowBound}`)
  }
  const probesB = Math.ceil(outageMillis / s.cooldownMillis) + b.runtime + 1 + spurious
  const slowBoundB = s.fibers * Math.max(1, b.runtime) + probesB
  if (slowUnavailableB > slowBoundB) {
    v.add("second node: calls kept waiting for an unavailable Redis", `${slowUnavailableB} slow calls > ${slowBoundB}`)
  }

  const during = phases[1]!.outcomes
  if (raw.mode === "StrictDistributed" && during.unavailable === 0) {
    v.add("the fault was not observed", "no CacheBackendUnavailable during the fault")
  }
  if (raw.mode === "ExplicitDegraded" && totals.degraded === 0) {
    v.add("the fault was not observed", "no result from the fallback")
  }

  if (raw.unhandledRejections > 0) v.add("unhandled rejection", `${raw.unhandledRejections}`)
  if (raw.unsettled > 0) v.add("operations never settled", `${raw.unsettled}`)
  if (raw.overflow) v.add("driver capacity exceeded", "raise the capacity")
  const growth = raw.memory.heapAfter - raw.memory.heapBefore
  if (growth > s.heapMarginBytes) {
    v.add("heap grew", `${(growth / 1048576).toFixed(1)} MiB > ${(s.heapMarginBytes / 1048576).toFixed(0)} MiB`)
  }

  return {
    mode: raw.mode,
    fault: raw.fault.name,
    description: raw.fault.description,
    settings: s,
    timeline: t,
    totals: totals.outcomes,
    byKind: Object.fromEntries(OP_KINDS.map((k, i) => [k, byKind[i]!.outcomes])) as Record<OpKind, Outcomes>,
    phases: { before: phaseReport(0), during: phaseReport(1), after: phaseReport(2) },
    near: raw.near,
    recoveryMillis,
    cooldownMaxMillis: cooldownMax,
    slowUnavailable,
    events: e,
    memory: raw.memory,
    stallMaxMillis: raw.loop.longestStall(),
    stallTotalMillis: raw.loop.totalStalled(),
    longStalls: spurious,
    unhandledRejections: raw.unhandledRejections,
    unsettled: raw.unsettled,
    opsPerSecond: n / ((t.end - t.start) / 1000),
    buckets: {
      millis: BUCKET_MILLIS,
      ok: Array.from(buckets[0]!),
      degraded: Array.from(buckets[1]!),
      unavailable: Array.from(buckets[2]!),
      other: Array.from(buckets[3]!)
    },
    violations: v.list()
  }
}
