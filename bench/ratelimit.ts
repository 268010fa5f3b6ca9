/**
 * Decisions per second of RateLimiter.consume and ReplayGuard.claim (StrictDistributed) against
 * raw ioredis doing the same Redis work with the same client options, in the same run:
 *
 * - RateLimiter.consume vs a raw EVALSHA of the same Lua script (same KEYS layout, same ARGV);
 * - ReplayGuard.claim vs a raw `SET key 1 PX window NX`.
 *
 * Sides alternate within every round (see harness.ts); figures are medians over rounds, ratios
 * are library / raw. It starts its own throw-away redis-server on a free loopback port.
 *
 *   npx tsx bench/ratelimit.ts            # BENCH_QUICK=1 for a short run
 */
import * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import type { Redis } from "ioredis"
import { type DistributedCache, RateLimiter, RedisClient, ReplayGuard, strictDistributed } from "../src/index.js"
import type { RateLimitAlgorithm } from "../src/DistributedCache.js"
import { rateLimitScripts } from "../src/internal/redisRateLimit.js"
import { startRedis } from "../test/support/RedisServer.js"
import { effectWorkers, rawClient, versions, waitReady } from "./fixtures.js"
import { type Case, promiseWorkers, QUICK, type Result, runCase, toMarkdown } from "./harness.js"

const SUBJECTS = 1_000
/** well above what one subject sees per window at these rates: the allowed path is measured */
const LIMIT = 100
const WINDOW_MILLIS = 1_000
/** claimed nonces expire soon, so the run does not fill Redis */
const NONCE_WINDOW_MILLIS = 5_000

const subjects = Array.from({ length: SUBJECTS }, (_, i) => `user-${i}`)

const rateLimitCase = (
  algorithm: RateLimitAlgorithm,
  inFlight: number,
  run: <A, E>(effect: Effect.Effect<A, E, DistributedCache>) => Promise<void>,
  raw: Redis
): Case => {
  const limiter = RateLimiter.make({ name: `bench-${algorithm}`, limit: LIMIT, window: WINDOW_MILLIS, algorithm })
  const script = rateLimitScripts[algorithm]
  // the raw side's keys, shaped like an application would build them (one hash tag per subject)
  const rawKeys = subjects.map((s) => script.keys(`raw:rl:${algorithm}:{${s}}`))
  return {
    group: "RateLimiter.consume",
    name: `${algorithm}, ${inFlight} in flight`,
    library: {
      label: "RateLimiter.consume",
      run: effectWorkers(inFlight, (i) => limiter.consume(subjects[i % SUBJECTS]!), run)
    },
    baselines: [
      {
        label: "raw EVALSHA (same script)",
        run: promiseWorkers(inFlight, (i) => {
          const keys = rawKeys[i % SUBJECTS]!
          return raw.evalsha(script.sha, keys.length, ...keys, LIMIT, WINDOW_MILLIS, 1)
        })
      }
    ]
  }
}

let nonceRun = 0
const replayCase = (
  inFlight: number,
  run: <A, E>(effect: Effect.Effect<A, E, DistributedCache>) => Promise<void>,
  raw: Redis
): Case => {
  const guard = ReplayGuard.make({ name: "bench-replay", window: NONCE_WINDOW_MILLIS })
  const prefix = `n${++nonceRun}-`
  let libraryNonce = 0
  let rawNonce = 0
  return {
    group: "ReplayGuard.claim",
    name: `fresh nonces, ${inFlight} in flight`,
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
    ]
  }
}

const main = async () => {
  const redis = await startRedis()
  // the library's client and the raw one get the same options (RedisClient.layer's defaults)
  const runtime = ManagedRuntime.make(
    strictDistributed().pipe(Layer.provide(RedisClient.layer({ url: redis.url, commandTimeout: Duration.millis(300) })))
  )
  const raw = rawClient(redis.url, true)
  try {
    await waitReady(raw)
    await runtime.runtime()
    for (const s of Object.values(rateLimitScripts)) await raw.script("LOAD", s.lua)
    const run = <A, E>(effect: Effect.Effect<A, E, DistributedCache>) =>
      runtime.runPromise(effect).then(() => undefined)
    const cases: Array<Case> = [
      rateLimitCase("fixed-window", 64, run, raw),
      rateLimitCase("sliding-window", 64, run, raw),
      rateLimitCase("token-bucket", 64, run, raw),
      rateLimitCase("token-bucket", 1, run, raw),
      replayCase(64, run, raw),
      replayCase(1, run, raw)
    ]
    const settings = QUICK
      ? { rounds: 3, sampleMillis: 200, warmupOps: 500 }
      : { rounds: 9, sampleMillis: 500, warmupOps: 2_000 }
    const results: Array<Result> = []
    for (const c of cases) {
      const result = await runCase(c, settings)
      results.push(result)
      const b = result.baselines[0]!
      console.error(
        `${c.group} ${c.name}: ${Math.round(result.library.opsPerSec)} vs ${Math.round(b.opsPerSec)} ops/s, ` +
          `ratio ${b.ratio.toFixed(2)}`
      )
    }
    console.log(`\n## Rate limits and replay guard (${settings.rounds} rounds, medians)\n`)
    console.log(toMarkdown(results))
    console.log(`\n${JSON.stringify(versions())}`)
  } finally {
    raw.disconnect()
    await runtime.dispose()
    await redis.stop()
  }
}

main().catch((error: unknown) => {
  console.error(error)
  process.exitCode = 1
})
