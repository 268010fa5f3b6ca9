/**
 * Rate-limit decisions and replay claims (StrictDistributed over `RedisClient.layer` with its
 * defaults) against raw ioredis doing the same Redis work (sequential rows: `new Redis(url)`;
 * 256 in flight: auto-pipelined), and against rate-limiter-flexible, in the same run:
 *
 * - RateLimiter.consume vs a raw EVALSHA of the same Lua script (same KEYS layout, same ARGV), the
 *   raw key built by string concatenation as an application would;
 * - the fixed-window RateLimiter.consume also vs rate-limiter-flexible's `RateLimiterRedis` (a
 *   fixed window counted by its own Lua script), on a client of its own of the same kind;
 * - ReplayGuard.claim vs a raw `SET key 1 PX window NX`, fresh nonces on both sides.
 *
 * The limit is far above what a subject sees in a window at these rates: the allowed path, the
 * common one, is measured. A section of `npm run bench`; alone: `BENCH_ONLY=ratelimit npm run bench`.
 */
import type * as Effect from "effect/Effect"
import * as ManagedRuntime from "effect/ManagedRuntime"
import type { Redis } from "ioredis"
import { RateLimiterRedis } from "rate-limiter-flexible"
import { type DistributedCache, RateLimiter, ReplayGuard } from "../src/index.js"
import type { RateLimitAlgorithm } from "../src/DistributedCache.js"
import { rateLimitScripts } from "@effect-failclosed/core"
import { concurrency, effectWorkers, libraryLayer, rawClient, rawKindFor, type RawKind, waitReady } from "./fixtures.js"
import { type Case, promiseWorkers, type ServerCpu, type Target } from "./harness.js"
import { redisBaselines } from "./redis.js"

const SUBJECTS = 1_000
/** far above what one subject sees per window at these rates: the allowed path is measured */
const LIMIT = 1_000_000
const WINDOW_MILLIS = 1_000
/** claimed nonces expire soon, so the run does not fill Redis */
const NONCE_WINDOW_MILLIS = 5_000

/** issue 12: at least rate-limiter-flexible's ops/s, at most its Redis CPU per decision */
const FLEXIBLE_TARGET: Target = { ratio: 1.0, redisCpu: 1.0 }

const ALGORITHMS: ReadonlyArray<RateLimitAlgorithm> = ["fixed-window", "sliding-window", "token-bucket"]
const IN_FLIGHT = [1, 256] as const
/** operations of every side before the first sample */
const WARMUP_OPS = 5_000

const subjects = Array.from({ length: SUBJECTS }, (_, i) => `user-${i}`)

type Run = <A, E>(effect: Effect.Effect<A, E, DistributedCache>) => Promise<void>

type Clients = Readonly<Record<RawKind, Redis>>

/** the raw side's decision for `subject`: its key by concatenation, one hash tag per subject */
const rawDecision = (raw: Redis, algorithm: RateLimitAlgorithm): ((subject: string) => Promise<unknown>) => {
  const { sha } = rateLimitScripts[algorithm]
  const prefix = `raw:rl:${algorithm}:{`
  return algorithm === "sliding-window"
    ? (subject) => {
        const key = prefix + subject + "}"
        return raw.evalsha(sha, 2, key + ":l", key + ":m", LIMIT, WINDOW_MILLIS, 1)
      }
    : (subject) => raw.evalsha(sha, 1, prefix + subject + "}", LIMIT, WINDOW_MILLIS, 1)
}

/** rate-limiter-flexible's fixed window on `client`: `consume(subject)` of one point */
const flexible = (client: Redis): ((subject: string) => Promise<unknown>) => {
  const limiter = new RateLimiterRedis({
    storeClient: client,
    keyPrefix: "raw:rlflx",
    points: LIMIT,
    duration: WINDOW_MILLIS / 1000
  })
  return (subject) => limiter.consume(subject)
}

const rateLimitCase = (
  algorithm: RateLimitAlgorithm,
  inFlight: number,
  run: Run,
  raw: Clients,
  flex: Clients,
  serverCpu: ServerCpu
): Case => {
  const limiter = RateLimiter.make({ name: `bench-${algorithm}`, limit: LIMIT, window: WINDOW_MILLIS, algorithm })
  const kind = rawKindFor(inFlight)
  const decide = rawDecision(raw[kind], algorithm)
  const side = (label: string, f: (subject: string) => Promise<unknown>, target: Target) => ({
    label,
    run: promiseWorkers(inFlight, (i) => f(subjects[i % SUBJECTS]!)),
    target
  })
  return {
    group: `Rate limits, ${concurrency(inFlight)}`,
    name: algorithm,
    library: {
      label: "RateLimiter.consume",
      run: effectWorkers(inFlight, (i) => limiter.consume(subjects[i % SUBJECTS]!), run)
    },
    baselines: [
      ...redisBaselines(
        inFlight,
        `raw EVALSHA, same script (ioredis ${kind})`,
        (i) => decide(subjects[i % SUBJECTS]!),
        promiseWorkers(inFlight, (i) => decide(subjects[i % SUBJECTS]!))
      ),
      ...(algorithm === "fixed-window"
        ? [side(`rate-limiter-flexible RateLimiterRedis (ioredis ${kind})`, flexible(flex[kind]), FLEXIBLE_TARGET)]
        : [])
    ],
    serverCpu
  }
}

let nonceRun = 0
const replayCase = (inFlight: number, run: Run, raw: Clients, serverCpu: ServerCpu): Case => {
  const guard = ReplayGuard.make({ name: "bench-replay", window: NONCE_WINDOW_MILLIS })
  const prefix = `n${++nonceRun}-`
  const kind = rawKindFor(inFlight)
  const client = raw[kind]
  let libraryNonce = 0
  let rawNonce = 0
  let floorNonce = 0
  return {
    group: `Replay guard, ${concurrency(inFlight)}`,
    name: "claim (fresh nonces)",
    library: {
      label: "ReplayGuard.claim",
      run: effectWorkers(inFlight, () => guard.claim(prefix + libraryNonce++), run)
    },
    baselines: redisBaselines(
      inFlight,
      `raw SET NX PX (ioredis ${kind})`,
      () => client.set("raw:rg:" + prefix + "f" + floorNonce++, "1", "PX", NONCE_WINDOW_MILLIS, "NX"),
      promiseWorkers(inFlight, () => client.set("raw:rg:" + prefix + rawNonce++, "1", "PX", NONCE_WINDOW_MILLIS, "NX"))
    ),
    serverCpu
  }
}

/** the cases of this section, against the Redis at `url`, and how to release their clients */
export const rateLimitCases = async (
  url: string,
  serverCpu: ServerCpu
): Promise<{
  readonly cases: ReadonlyArray<Case>
  readonly prepare: () => Promise<void>
  readonly close: () => Promise<void>
}> => {
  const runtime = ManagedRuntime.make(libraryLayer(url))
  const clients = (): Clients => ({
    default: rawClient(url, "default"),
    "auto-pipelined": rawClient(url, "auto-pipelined")
  })
  const raw = clients()
  const flex = clients()
  const all = [raw.default, raw["auto-pipelined"], flex.default, flex["auto-pipelined"]]
  const close = async () => {
    for (const c of all) c.disconnect()
    await runtime.dispose()
  }
  const run: Run = (effect) => runtime.runPromise(effect).then(() => undefined)
  const cases: Array<Case> = []
  for (const inFlight of IN_FLIGHT) {
    for (const algorithm of ALGORITHMS) cases.push(rateLimitCase(algorithm, inFlight, run, raw, flex, serverCpu))
  }
  for (const inFlight of IN_FLIGHT) cases.push(replayCase(inFlight, run, raw, serverCpu))
  try {
    await Promise.all(all.map(waitReady))
    // building the runtime runs the startup probe
    await runtime.runtime()
    for (const s of Object.values(rateLimitScripts)) await raw.default.script("LOAD", s.lua)
  } catch (error) {
    await close()
    throw error
  }
  // when this section runs first (BENCH_ONLY=ratelimit), nothing has run the Effect runtime's code yet: without a
  // warm-up of every side, the first samples measure the JIT compiling it. Run just before the section, so that the
  // short-lived keys it writes expire during this section, not during another one's samples.
  const prepare = async () => {
    for (const c of cases) for (const side of [c.library, ...c.baselines]) await side.run(WARMUP_OPS)
  }
  return { cases, prepare, close }
}
