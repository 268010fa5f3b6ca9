/**
 * Where a `get (hit)` spends its time, sequential and with 256 in flight (issue 12): raw ioredis (default options
 * sequentially, auto-pipelined with 256 in flight), the Effect floor (the same ioredis call in a bare `Effect.async`
 * in a fiber loop), the Redis store as an Effect, `DistributedCache.get` of StrictDistributed, and `Keyspace.get` over
 * it, all on a redis-server of its own (a free loopback port).
 *
 * Every round runs every case once (rotating the order); the figures are medians over rounds with their range, and a
 * ratio is the median of the per-round ratios against raw ioredis (or the Effect floor) of the same round. Per case: ops/s, client CPU µs per
 * op, Redis CPU µs per op (`INFO cpu`), and Redis socket reads per op (`INFO stats` `total_reads_processed`: how many
 * writes the commands arrived in; 1 sequentially, 1/commands-per-write with many in flight).
 *
 * ```sh
 * npx tsx bench/profile-get.ts                      # all cases, 9 rounds
 * ROUNDS=5 OPS=100000 npx tsx bench/profile-get.ts
 * ONLY="keyspace 256" SECONDS=8 node --cpu-prof --cpu-prof-dir=/tmp/prof --import tsx bench/profile-get.ts
 * ```
 *
 * `ONLY` runs one case for `SECONDS` (for `--cpu-prof`), the case names are printed by a full run.
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import type { Redis } from "ioredis"
import { DistributedCache, type DistributedCacheService } from "../src/DistributedCache.js"
import { Breaker, canonicalJson, hashCanonical, keyspaceHead, NO_TENANT_SEGMENT } from "@effect-failclosed/core"
import { makeStrict } from "../src/internal/policy.js"
import { redisEffects, redisStoreOf } from "../src/internal/store.js"
import { RedisClient } from "../src/RedisClient.js"
import { startRedis } from "../test/support/RedisServer.js"
import {
  COMMAND_TIMEOUT,
  effectWorkers,
  hitId,
  KEYS,
  rawClient,
  rawKey,
  TTL_MILLIS,
  users,
  Users,
  waitReady
} from "./fixtures.js"
import { gc, median, promiseWorkers, type Runner } from "./harness.js"

const ROUNDS = Number(process.env["ROUNDS"] ?? 9)
const OPS = Number(process.env["OPS"] ?? 60_000)
const ONLY = process.env["ONLY"]
const SECONDS = Number(process.env["SECONDS"] ?? 8)
const KEY_PREFIX = "fc"
const COUNT_WRITES = process.env["COUNT_WRITES"] === "1"

interface Case {
  readonly name: string
  readonly inFlight: number
  readonly run: Runner
  /** the raw case its ratio is taken against */
  readonly raw: string
  /** the Effect floor its ratio is taken against */
  readonly floor: string
}

interface Sample {
  readonly opsPerSec: number
  readonly cpuMicros: number
  readonly redisMicros: number
  readonly readsPerOp: number
  /** the library client's socket writes per op (COUNT_WRITES=1) */
  readonly writesPerOp: number
}

const main = async () => {
  const server = await startRedis()
  const scope = Effect.runSync(Scope.make())
  try {
    const url = server.url
    const rawDefault = rawClient(url, "default")
    const rawAuto = rawClient(url, "auto-pipelined")
    const probe = rawClient(url, "default")
    await Promise.all([waitReady(rawDefault), waitReady(rawAuto), waitReady(probe)])
    const redis = await Effect.runPromise(
      Scope.extend(RedisClient.make({ url, commandTimeout: COMMAND_TIMEOUT }), scope).pipe(
        Effect.tap((r) => r.awaitReady(r.startupTimeout))
      )
    )
    // COUNT_WRITES=1: the library client's socket writes per operation (a wrapper on its socket; off by default)
    let writes = 0
    const socket = (redis.client as Redis).stream
    if (COUNT_WRITES) {
      const write = socket.write
      socket.write = function (this: typeof socket, ...args: Parameters<typeof write>) {
        writes++
        return write.apply(this, args)
      } as typeof write
    }
    const store = redisEffects(redisStoreOf(redis))
    const strict = makeStrict({
      store,
      breaker: new Breaker(Date.now, 500),
      keyPrefix: KEY_PREFIX
    })
    const head = keyspaceHead(KEY_PREFIX, Users.name) + NO_TENANT_SEGMENT + ":"
    const storeKeys = Array.from({ length: KEYS }, (_, id) => head + hashCanonical(canonicalJson({ id })))
    const over = (service: DistributedCacheService) => (e: Effect.Effect<void, unknown, DistributedCache>) =>
      Effect.runPromise(Effect.provideService(e, DistributedCache, service))
    const plain = (e: Effect.Effect<void, unknown>) => Effect.runPromise(e)
    await effectWorkers(64, (i) => Users.set({ id: hitId(i) }, users[hitId(i)]!), over(strict))(KEYS)
    await promiseWorkers(64, (i) =>
      rawDefault.set(rawKey(hitId(i)), JSON.stringify(users[hitId(i)]), "PX", TTL_MILLIS)
    )(KEYS)
    if ((await rawDefault.get(storeKeys[0]!)) === null) throw new Error("profile: store key layout mismatch")

    const parse = (s: string | null | undefined) => (s == null ? undefined : (JSON.parse(s) as unknown))
    /** the Effect floor: the same ioredis call in a bare Effect.async, the least any Effect library pays for it */
    const floorGet = (client: Redis, key: string) =>
      Effect.async<string | null, unknown>((resume) => {
        client.get(key).then(
          (v) => resume(Effect.succeed(v)),
          (e: unknown) => resume(Effect.fail(e))
        )
      })
    const cases: Array<Case> = []
    for (const inFlight of [1, 256]) {
      const raw = `raw ${inFlight === 1 ? "default" : "auto-pipelined"} ${inFlight}`
      const floor = `Effect floor ${inFlight}, library keys`
      const client = inFlight === 1 ? rawDefault : rawAuto
      cases.push(
        {
          name: raw,
          inFlight,
          raw,
          floor,
          run: promiseWorkers(inFlight, async (i) => parse(await client.get(rawKey(hitId(i)))))
        },
        {
          // the same commands as the library's: what the key layout costs
          name: `raw ${inFlight === 1 ? "default" : "auto-pipelined"} ${inFlight}, library keys`,
          inFlight,
          raw,
          floor,
          run: promiseWorkers(inFlight, async (i) => parse(await client.get(storeKeys[hitId(i)]!)))
        },
        {
          // the same ioredis client and call as the raw row with library keys, in a bare Effect.async in a fiber loop
          name: floor,
          inFlight,
          raw,
          floor,
          run: effectWorkers(inFlight, (i) => Effect.map(floorGet(client, storeKeys[hitId(i)]!), parse), plain)
        },
        {
          name: `store ${inFlight}`,
          inFlight,
          raw,
          floor,
          run: effectWorkers(inFlight, (i) => Effect.map(store.get(storeKeys[hitId(i)]!), parse), plain)
        },
        {
          name: `DistributedCache ${inFlight}`,
          inFlight,
          raw,
          floor,
          run: effectWorkers(
            inFlight,
            (i) => Effect.map(strict.get(storeKeys[hitId(i)]!), (c) => parse(c.value)),
            plain
          )
        },
        {
          name: `keyspace ${inFlight}`,
          inFlight,
          raw,
          floor,
          run: effectWorkers(inFlight, (i) => Users.get({ id: hitId(i) }), over(strict))
        }
      )
    }

    const info = async () => {
      const text = (await probe.info("cpu")) + (await probe.info("stats"))
      const field = (name: string) => Number(new RegExp(`^${name}:([0-9.]+)`, "m").exec(text)?.[1] ?? NaN)
      return { cpu: field("used_cpu_user") + field("used_cpu_sys"), reads: field("total_reads_processed") }
    }
    const timeOnce = async (run: Runner, ops: number): Promise<Sample> => {
      const before = await info()
      const writesBefore = writes
      const cpu = process.cpuUsage()
      const start = process.hrtime.bigint()
      await run(ops)
      const elapsed = Number(process.hrtime.bigint() - start) / 1e9
      const used = process.cpuUsage(cpu)
      const after = await info()
      return {
        opsPerSec: ops / elapsed,
        cpuMicros: (used.user + used.system) / ops,
        redisMicros: ((after.cpu - before.cpu) * 1e6) / ops,
        // the probe's own two INFO commands arrive in reads of their own
        readsPerOp: (after.reads - before.reads - 2) / ops,
        writesPerOp: (writes - writesBefore) / ops
      }
    }

    if (ONLY !== undefined) {
      const c = cases.find((c) => c.name === ONLY)
      if (c === undefined) throw new Error(`profile: no case ${ONLY}; cases: ${cases.map((c) => c.name).join(", ")}`)
      await c.run(OPS / 4)
      const deadline = Date.now() + SECONDS * 1000
      const samples: Array<Sample> = []
      while (Date.now() < deadline) samples.push(await timeOnce(c.run, OPS))
      console.log(
        `${c.name}: ${Math.round(median(samples.map((s) => s.opsPerSec)))} ops/s, ` +
          `client ${median(samples.map((s) => s.cpuMicros)).toFixed(2)} µs/op` +
          (COUNT_WRITES ? `, ${median(samples.map((s) => s.writesPerOp)).toFixed(4)} writes/op` : "")
      )
      return
    }

    for (const c of cases) await c.run(OPS / 2) // warm-up
    const samples = new Map<string, Array<Sample>>(cases.map((c) => [c.name, []]))
    for (let round = 0; round < ROUNDS; round++) {
      for (let k = 0; k < cases.length; k++) {
        const c = cases[(round + k) % cases.length]!
        gc()
        samples.get(c.name)!.push(await timeOnce(c.run, OPS))
      }
    }
    const range = (xs: ReadonlyArray<number>, digits: number) =>
      `${median(xs).toFixed(digits)} (${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)})`
    console.log(
      `load ${(await import("node:os"))
        .loadavg()
        .map((l) => l.toFixed(1))
        .join(" ")}; ${ROUNDS} rounds of ${OPS} ops`
    )
    console.log(
      "| case | ops/s | ratio vs raw | ratio vs Effect floor | client µs/op | Redis µs/op | Redis CPU ratio | Redis reads/op |"
    )
    console.log("|---|---|---|---|---|---|---|---|")
    for (const c of cases) {
      const xs = samples.get(c.name)!
      const raw = samples.get(c.raw)!
      const floor = samples.get(c.floor)!
      console.log(
        `| ${c.name} | ${range(
          xs.map((s) => s.opsPerSec),
          0
        )} | ${range(
          xs.map((s, r) => s.opsPerSec / raw[r]!.opsPerSec),
          2
        )} | ${range(
          xs.map((s, r) => s.opsPerSec / floor[r]!.opsPerSec),
          2
        )} | ${range(
          xs.map((s) => s.cpuMicros),
          1
        )} | ${range(
          xs.map((s) => s.redisMicros),
          2
        )} | ${range(
          xs.map((s, r) => s.redisMicros / raw[r]!.redisMicros),
          2
        )} | ${range(
          xs.map((s) => s.readsPerOp),
          3
        )} |`
      )
    }
    rawDefault.disconnect()
    rawAuto.disconnect()
    probe.disconnect()
  } finally {
    await Effect.runPromise(Scope.close(scope, Exit.void))
    await server.stop()
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error)
    process.exit(1)
  }
)
