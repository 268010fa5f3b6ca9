/**
 * Rate-limit decisions and replay claims (StrictDistributed over `RedisClient.layer`) against raw
 * ioredis doing the same Redis work with the same client options (command timeout, auto-pipelining
 * on, the library's default), in the same run:
 *
 * - RateLimiter.consume vs a raw EVALSHA of the same Lua script (same KEYS layout, same ARGV), the
 *   raw key built by string concatenation as an application would;
 * - ReplayGuard.claim vs a raw `SET key 1 PX window NX`, fresh nonces on both sides.
 *
 * A section of `npm run bench`; alone: `BENCH_ONLY=ratelimit npm run bench`.
 */
import type * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import type { Redis } from "ioredis"
import { type DistributedCache, RateLimiter, RedisClient, ReplayGuard, strictDistributed } from "../src/index.js"
import type { RateLimitAlgorithm } from "../src/DistributedCache.js"
import { rateLimitScripts } from "../src/internal/redis/scripts.js"
import { COMMAND_TIMEOUT, effectWorkers, rawClient, waitReady } from "./fixtures.js"
import { type Case, promiseWorkers } from "./harness.js"

const SUBJECTS = 1_000
/** well above what one subject sees per window at these rates: the allowed path is measured */
const LIMIT = 100
const WINDOW_MILLIS = 1_000
/** claimed nonces expire soon, so the run does not fill Redis */
const NONCE_WINDOW_MILLIS = 5_000

/** issue 6: a decision ≥ 0.85× a raw EVALSHA of the same script, a claim ≥ 0.90× a raw SET NX PX */
const CONSUME_TARGET = 0.85
const CLAIM_TARGET = 0.9

const ALGORITHMS: ReadonlyArray<RateLimitAlgorithm> = ["fixed-window", "sliding-window", "token-bucket"]
const IN_FLIGHT = [1, 256] as const
/** operations of every side before the first sample */
const WARMUP_OPS = 5_000

const subjects = Array.from({ length: SUBJECTS }, (_, i) => `user-${i}`)

type Run = <A, E>(effect: Effect.Effect<A, E, DistributedCache>) => Promise<void>

const concurrency = (inFlight: number) => (inFlight === 1 ? "sequential" : `${inFlight} in flight`)

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

const rateLimitCase = (algorithm: RateLimitAlgorithm, inFlight: number, run: Run, raw: Redis): Case => {
  const limiter = RateLimiter.make({ name: `bench-${algorithm}`, limit: LIMIT, window: WINDOW_MILLIS, algorithm })
  const decide = rawDecision(raw, algorithm)
  return {
    group: `Rate limits, ${concurrency(inFlight)}`,
    name: algorithm,
    library: {
      label: "RateLimiter.consume",
      run: effectWorkers(inFlight, (i) => limiter.consume(subjects[i % SUBJECTS]!), run)
    },
    baselines: [
      { label: "raw EVALSHA (same script)", run: promiseWorkers(inFlight, (i) => decide(subjects[i % SUBJECTS]!)) }
    ],
    target: CONSUME_TARGET
  }
}

let nonceRun = 0
const replayCase = (inFlight: number, run: Run, raw: Redis): Case => {
  const guard = ReplayGuard.make({ name: "bench-replay", window: NONCE_WINDOW_MILLIS })
  const prefix = `n${++nonceRun}-`
  let libraryNonce = 0
  let rawNonce = 0
  return {
    group: `Replay guard, ${concurrency(inFlight)}`,
    name: "claim (fresh nonces)",
    library: {
      label: "ReplayGuard.claim",
      run: effectWorkers(inFlight, () => guard.claim(prefix + libraryNonce++), run)
    },
    baselines: [
      {
        label: "raw SET NX PX",
        run: promiseWorkers(inFlight, () =>
          raw.set("raw:rg:" + prefix + rawNonce++, "1", "PX", NONCE_WINDOW_MILLIS, "NX")
        )
      }
    ],
    target: CLAIM_TARGET
  }
}

/** the cases of this section, against the Redis at `url`, and how to release their clients */
export const rateLimitCases = async (
  url: string
): Promise<{ readonly cases: ReadonlyArray<Case>; readonly close: () => Promise<void> }> => {
  // the library's client and the raw one get the same options
  const runtime = ManagedRuntime.make(
    strictDistributed().pipe(
      Layer.provide(RedisClient.layer({ url, commandTimeout: COMMAND_TIMEOUT, enableAutoPipelining: true }))
    )
  )
  const raw = rawClient(url, true)
  const close = async () => {
    raw.disconnect()
    await runtime.dispose()
  }
  const run: Run = (effect) => runtime.runPromise(effect).then(() => undefined)
  const cases: Array<Case> = []
  for (const inFlight of IN_FLIGHT) {
    for (const algorithm of ALGORITHMS) cases.push(rateLimitCase(algorithm, inFlight, run, raw))
  }
  for (const inFlight of IN_FLIGHT) cases.push(replayCase(inFlight, run, raw))
  try {
    await waitReady(raw)
    // building the runtime runs the startup probe
    await runtime.runtime()
    for (const s of Object.values(rateLimitScripts)) await raw.script("LOAD", s.lua)
    // when this section runs first (BENCH_ONLY=ratelimit), nothing has run the Effect runtime's code yet: without a
    // warm-up of every side, the first samples measure the JIT compiling it
    for (const c of cases) for (const side of [c.library, ...c.baselines]) await side.run(WARMUP_OPS)
  } catch (error) {
    await close()
    throw error
  }
  return { cases, close }
}
