/**
 * `npm run load`: the near cache under real load, several processes (issue 20).
 *
 * Starts its own redis-server on a free loopback port, loads version 0 of every key, and runs `processes` node
 * processes (`bench/load-worker.ts`), each with its own client, cache and near cache and many fibers of reads with
 * 1% writes of versioned values, for `seconds`. Three phases of equal length:
 *
 * 1. steady load;
 * 2. process 0 stalls (a synchronous busy loop of `stallMillis`, several times `maxStaleness`);
 * 3. Redis saturated by writers (`redis-benchmark`, pipelined SETs of other keys) for half the phase.
 *
 * Then a checker reads every operation of every process and proves, for every read:
 *
 * - it returned a value that was written (version 0 from the loader, or a version the key's writer sent);
 * - a near hit never returned a version older than one whose write completed more than `maxStaleness` before the
 *   read began; a read from Redis never one older than a write completed before it began.
 *
 * and reports per phase: the near-hit ratio, the Redis commands saved (GETs not sent), the invalidation lag (how long
 * after a write completed another process still served the older version near: p50/p99/max over the pairs where it
 * did), and for the stall, what process 0 did after it. Loopback only; bounded in time (`seconds`) and count (reads
 * recorded per process at most `maxReads`).
 *
 *   npm run load                        # 30 s, 4 processes
 *   LOAD_SECONDS=6 npm run load         # shorter
 */
import { spawn } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { performance } from "node:perf_hooks"
import { fileURLToPath } from "node:url"
import { Duration, Effect, Layer } from "effect"
import { RedisClient, strictDistributed } from "effect-failclosed"
import { Redis } from "ioredis"
import { startRedis } from "../test/support/RedisServer.js"
import {
  decodeRecords,
  loadKeyspace,
  READ_FAILED,
  READ_NEAR,
  type Records,
  type Schedule,
  WRITE_DONE,
  type WorkerSettings
} from "./load-worker.js"

export interface LoadSettings {
  readonly seconds: number
  readonly processes: number
  readonly fibers: number
  readonly keys: number
  readonly writeRatio: number
  readonly maxStalenessMillis: number
  readonly stallMillis: number
  readonly maxReads: number
  /** redis-benchmark connections during the saturation */
  readonly saturators: number
}

export const fullSettings: LoadSettings = {
  seconds: 30,
  processes: 4,
  fibers: 64,
  keys: 1_000,
  writeRatio: 0.01,
  maxStalenessMillis: 500,
  stallMillis: 1_600,
  maxReads: 3_000_000,
  saturators: 50
}

/** the suite's variant: a few seconds */
export const shortSettings: LoadSettings = {
  ...fullSettings,
  seconds: 4.5,
  fibers: 16,
  keys: 200,
  maxStalenessMillis: 300,
  stallMillis: 700,
  maxReads: 400_000,
  saturators: 20
}

/** clocks of processes on one machine: the checker allows this much on top of a bound */
export const CLOCK_MARGIN_MILLIS = 5

export interface Distribution {
  readonly count: number
  readonly p50: number
  readonly p99: number
  readonly max: number
}

export interface PhaseFigures {
  readonly name: string
  readonly reads: number
  readonly nearHits: number
  readonly nearHitRatio: number
  readonly failedReads: number
  readonly writes: number
  /** (write, other process) pairs where that process read the key after the write completed */
  readonly observedPairs: number
  /** how long after a write completed another process still served the older version near (pairs where it did) */
  readonly lag: Distribution
}

export interface LoadReport {
  readonly settings: LoadSettings
  readonly phases: ReadonlyArray<PhaseFigures>
  readonly total: { readonly reads: number; readonly nearHits: number; readonly redisGets: number }
  /** Redis GETs not sent: reads answered near */
  readonly commandsSaved: number
  readonly violations: ReadonlyArray<string>
  readonly violationCount: number
  readonly stall: {
    readonly endedAt: number
    /** process 0: first near hit after the stall ended (ms), and its reads' near-hit ratio in the 100 ms after that */
    readonly nearAgainAfterMillis: number | undefined
    readonly nearRatioNext100Millis: number
    /** process 0's near hits in the second after the stall, over its reads */
    readonly nearRatioNextSecond: number
  }
  readonly saturation: {
    readonly from: number
    readonly to: number
    readonly benchmarkOps: number
    /** redis-server's CPU during the saturation, in cores (1: one core busy all the time) */
    readonly redisCpuShare: number
  }
}

const here = fileURLToPath(new URL(".", import.meta.url))
const now = (): number => performance.timeOrigin + performance.now()
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, ms)))

const distribution = (xs: Array<number>): Distribution => {
  if (xs.length === 0) return { count: 0, p50: 0, p99: 0, max: 0 }
  xs.sort((a, b) => a - b)
  const at = (q: number) => xs[Math.min(xs.length - 1, Math.floor(q * xs.length))]!
  return { count: xs.length, p50: at(0.5), p99: at(0.99), max: xs[xs.length - 1]! }
}

/** seconds of CPU redis-server has used */
const redisCpu = async (redis: Redis): Promise<number> => {
  const info = await redis.info("cpu")
  return Number(/used_cpu_user:([\d.]+)/.exec(info)?.[1] ?? 0) + Number(/used_cpu_sys:([\d.]+)/.exec(info)?.[1] ?? 0)
}

const getCalls = async (redis: Redis): Promise<number> =>
  Number(/cmdstat_get:calls=(\d+)/.exec(await redis.info("commandstats"))?.[1] ?? 0)

/**
 * The worker as one ES module (esbuild, which tsx and vitest bring): a process then starts in under a second instead
 * of transpiling the library's sources itself (7 s each on a loaded 2-core machine, four at once).
 */
const bundleWorker = async (dir: string): Promise<string> => {
  const { build } = await import("esbuild")
  const outfile = join(dir, "load-worker.mjs")
  await build({
    entryPoints: [join(here, "load-worker.ts")],
    bundle: true,
    platform: "node",
    format: "esm",
    conditions: ["source"],
    outfile,
    logLevel: "error",
    // ioredis is CommonJS: its require of node's modules, inside an ES module
    banner: { js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);" }
  })
  return outfile
}

/** a worker process: `ready` once its near cache serves, `start` sends it the schedule, `done` when it exited */
const startWorker = (bundle: string, settings: WorkerSettings) => {
  const child = spawn(process.execPath, [bundle, JSON.stringify(settings)], { stdio: ["pipe", "pipe", "inherit"] })
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout.setEncoding("utf8")
    child.stdout.on("data", (chunk: string) => {
      if (chunk.includes("ready")) resolve()
      // the workers' Warnings (near cache paused, emptied, serves again; Redis unavailable), with LOAD_DEBUG set
      if (process.env["LOAD_DEBUG"] !== undefined) process.stderr.write(`[${settings.id}] ${chunk}`)
    })
    child.on("exit", () => reject(new Error(`load worker ${settings.id} exited before it was ready`)))
  })
  const done = new Promise<void>((resolve, reject) => {
    child.on("error", reject)
    child.on("exit", (code) =>
      code === 0 ? resolve() : reject(new Error(`load worker ${settings.id} exited ${code}`))
    )
  })
  ready.catch(() => {})
  return {
    ready,
    done,
    start: (schedule: Schedule) => child.stdin.end(JSON.stringify(schedule) + "\n"),
    kill: () => child.kill("SIGKILL")
  }
}

/**
 * Writers saturating Redis until killed: pipelined SETs from `connections` clients, of random keys under the load
 * keyspace's prefix (keys no process reads): each is an invalidation message to every process' tracking connection
 * too, so Redis' CPU and the invalidation path are both loaded.
 */
const saturate = (port: number, connections: number, prefix: string) => {
  const child = spawn(
    "redis-benchmark",
    [
      "-h",
      "127.0.0.1",
      "-p",
      String(port),
      "-n",
      "100000000",
      "-c",
      String(connections),
      "-P",
      "32",
      "-r",
      "100000",
      "-q"
    ].concat(["SET", `${prefix}saturate:__rand_int__`, "x".repeat(64)]),
    { stdio: process.env["LOAD_DEBUG"] === undefined ? "ignore" : "inherit" }
  )
  return { stop: () => child.kill("SIGKILL") }
}

export const runLoad = async (s: LoadSettings, log: (line: string) => void = () => {}): Promise<LoadReport> => {
  const server = await startRedis()
  const dir = mkdtempSync(join(tmpdir(), "effect-failclosed-load-"))
  const admin = new Redis(server.url, { maxRetriesPerRequest: 1 })
  let killWorkers = () => {}
  try {
    // version 0 of every key, through the library (its key layout and envelope), from a worker that only writes
    const Load = loadKeyspace(s.maxStalenessMillis, s.keys)
    await Effect.runPromise(
      Effect.provide(
        Effect.forEach(
          Array.from({ length: s.keys }, (_, k) => k),
          (k) => Load.set(k, { k, v: 0 }),
          {
            concurrency: 16,
            discard: true
          }
        ),
        strictDistributed().pipe(
          Layer.provide(RedisClient.layer({ url: server.url, commandTimeout: Duration.seconds(5) }))
        )
      )
    )

    const phaseMillis = (s.seconds * 1_000) / 3
    const outs = Array.from({ length: s.processes }, (_, id) => join(dir, `worker-${id}.bin`))
    log(`load: ${s.processes} processes × ${s.fibers} fibers, ${s.keys} keys, ${s.seconds} s, redis on ${server.port}`)
    const bundle = await bundleWorker(dir)
    const children = outs.map((out, id) =>
      startWorker(bundle, {
        url: server.url,
        id,
        processes: s.processes,
        keys: s.keys,
        fibers: s.fibers,
        writeRatio: s.writeRatio,
        maxStalenessMillis: s.maxStalenessMillis,
        maxReads: s.maxReads,
        out
      })
    )
    killWorkers = () => children.forEach((c) => c.kill())
    // processes take a few seconds to start (tsx): the load starts together once every one is ready
    await Promise.all(children.map((c) => c.ready))
    const startAt = now() + 300
    const endAt = startAt + s.seconds * 1_000
    const stallAt = startAt + phaseMillis + phaseMillis / 5
    const saturationFrom = startAt + 2 * phaseMillis + phaseMillis / 5
    const saturationTo = saturationFrom + phaseMillis / 2
    children.forEach((c, id) => c.start({ startAt, endAt, stall: id === 0 ? [stallAt, s.stallMillis] : undefined }))
    const workers = Promise.all(children.map((c) => c.done))
    await sleep(startAt - now() - 100)
    const getsBefore = await getCalls(admin)
    await sleep(saturationFrom - now())
    const setsBefore = Number(/cmdstat_set:calls=(\d+)/.exec(await admin.info("commandstats"))?.[1] ?? 0)
    const cpuBefore = await redisCpu(admin)
    const [someKey] = await admin.keys("*")
    const saturation = saturate(server.port, s.saturators, someKey!.slice(0, someKey!.lastIndexOf(":") + 1))
    log("load: saturating Redis with writers")
    await sleep(saturationTo - now())
    saturation.stop()
    const setsAfter = Number(/cmdstat_set:calls=(\d+)/.exec(await admin.info("commandstats"))?.[1] ?? 0)
    const redisCpuShare = ((await redisCpu(admin)) - cpuBefore) / ((saturationTo - saturationFrom) / 1_000)
    await workers
    const redisGets = (await getCalls(admin)) - getsBefore
    const records = outs.map((out) => decodeRecords(readFileSync(out)))
    records.forEach((w, id) => {
      let near = 0
      let failed = 0
      for (let i = 0; i < w.reads; i++) {
        if ((w.readFlags[i]! & READ_NEAR) !== 0) near++
        if ((w.readFlags[i]! & READ_FAILED) !== 0) failed++
      }
      log(
        `load: process ${id}: ${w.reads} reads (${near} near, ${failed} failed), ${w.writes} writes, first read ` +
          `${w.reads === 0 ? "never" : `${(w.readStart[0]! - startAt).toFixed(0)} ms`} after the start`
      )
    })
    const report = check(s, records, {
      startAt,
      phaseMillis,
      stallEnd: stallAt + s.stallMillis,
      saturationFrom,
      saturationTo,
      redisGets,
      benchmarkOps: setsAfter - setsBefore,
      redisCpuShare
    })
    return report
  } finally {
    killWorkers()
    admin.disconnect()
    await server.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}

interface Timeline {
  readonly startAt: number
  readonly phaseMillis: number
  readonly stallEnd: number
  readonly saturationFrom: number
  readonly saturationTo: number
  readonly redisGets: number
  readonly benchmarkOps: number
  readonly redisCpuShare: number
}

type Worker = Records & { readonly reads: number; readonly writes: number }

/** the checker: every read of every process against every completed write */
export const check = (s: LoadSettings, workers: ReadonlyArray<Worker>, t: Timeline): LoadReport => {
  const violations: Array<string> = []
  let violationCount = 0
  const violate = (what: string) => {
    violationCount++
    if (violations.length < 20) violations.push(what)
  }
  // each key's writes (one writer, one write at a time): versions in order; completed ones with their reply time
  const sentMax = new Int32Array(s.keys)
  const doneVersion: Array<Array<number>> = Array.from({ length: s.keys }, () => [])
  const doneAt: Array<Array<number>> = Array.from({ length: s.keys }, () => [])
  const writer = new Int32Array(s.keys)
  workers.forEach((w, id) => {
    for (let i = 0; i < w.writes; i++) {
      const k = w.writeKey[i]!
      writer[k] = id
      sentMax[k] = Math.max(sentMax[k]!, w.writeVersion[i]!)
      if (w.writeState[i] === WRITE_DONE) {
        doneVersion[k]!.push(w.writeVersion[i]!)
        doneAt[k]!.push(w.writeDone[i]!)
      }
    }
  })
  const phaseOf = (at: number) => Math.max(0, Math.min(2, Math.floor((at - t.startAt) / t.phaseMillis)))
  const names = ["steady", "one process stalls", "Redis saturated by writers"]
  const reads = [0, 0, 0]
  const hits = [0, 0, 0]
  const failed = [0, 0, 0]
  const lags: Array<Array<number>> = [[], [], []]
  const observed = [0, 0, 0]
  const writes = [0, 0, 0]
  for (let k = 0; k < s.keys; k++) for (const at of doneAt[k]!) writes[phaseOf(at)]!++

  workers.forEach((w, id) => {
    // per key: the stale window of each completed write as this process saw it, and its last read of the key
    const window = doneAt.map((list) => new Float64Array(list.length).fill(-1))
    const lastRead = new Float64Array(s.keys).fill(-Infinity)
    for (let i = 0; i < w.reads; i++) {
      const start = w.readStart[i]!
      const k = w.readKey[i]!
      const u = w.readVersion[i]!
      const flags = w.readFlags[i]!
      const near = (flags & READ_NEAR) !== 0
      const phase = phaseOf(start)
      reads[phase]!++
      if (near) hits[phase]!++
      if ((flags & READ_FAILED) !== 0) {
        failed[phase]!++
        continue
      }
      lastRead[k] = Math.max(lastRead[k]!, start)
      if (u < 0 || u > sentMax[k]!) {
        violate(
          `process ${id}, key ${k}: read ${u === -1 ? "no entry" : u === -2 ? "another key's value" : `version ${u}`}, never written`
        )
        continue
      }
      // the first completed write newer than u
      const versions = doneVersion[k]!
      let lo = 0
      let hi = versions.length
      while (lo < hi) {
        const mid = (lo + hi) >>> 1
        if (versions[mid]! <= u) lo = mid + 1
        else hi = mid
      }
      const times = doneAt[k]!
      for (let j = lo; j < versions.length && times[j]! < start; j++) {
        const lag = start - times[j]!
        if (j === lo) {
          if (near && lag > s.maxStalenessMillis + CLOCK_MARGIN_MILLIS) {
            violate(
              `process ${id}, key ${k}: near hit of version ${u} ${lag.toFixed(1)} ms after version ${versions[j]} was written`
            )
          } else if (!near && lag > CLOCK_MARGIN_MILLIS) {
            violate(
              `process ${id}, key ${k}: Redis read of version ${u} ${lag.toFixed(1)} ms after version ${versions[j]} was written`
            )
          }
        }
        if (near && writer[k] !== id) window[k]![j] = Math.max(window[k]![j]!, lag)
      }
    }
    for (let k = 0; k < s.keys; k++) {
      if (writer[k] === id) continue
      const times = doneAt[k]!
      for (let j = 0; j < times.length; j++) {
        if (lastRead[k]! <= times[j]!) continue
        const phase = phaseOf(times[j]!)
        observed[phase]!++
        if (window[k]![j]! >= 0) lags[phase]!.push(window[k]![j]!)
      }
    }
  })

  // process 0 after its stall
  const w0 = workers[0]!
  let nearAgain: number | undefined
  let next100 = 0
  let next100Hits = 0
  let nextSecond = 0
  let nextSecondHits = 0
  for (let i = 0; i < w0.reads; i++) {
    const start = w0.readStart[i]!
    if (start < t.stallEnd) continue
    const near = (w0.readFlags[i]! & READ_NEAR) !== 0
    if (nearAgain === undefined && near) nearAgain = start - t.stallEnd
    if (nearAgain !== undefined && start - t.stallEnd < nearAgain + 100) {
      next100++
      if (near) next100Hits++
    }
    if (start - t.stallEnd < 1_000) {
      nextSecond++
      if (near) nextSecondHits++
    }
  }
  const phases = names.map((name, p): PhaseFigures => ({
    name,
    reads: reads[p]!,
    nearHits: hits[p]!,
    nearHitRatio: reads[p]! === 0 ? 0 : hits[p]! / reads[p]!,
    failedReads: failed[p]!,
    writes: writes[p]!,
    observedPairs: observed[p]!,
    lag: distribution(lags[p]!)
  }))
  const totalReads = reads.reduce((a, b) => a + b, 0)
  const totalHits = hits.reduce((a, b) => a + b, 0)
  return {
    settings: s,
    phases,
    total: { reads: totalReads, nearHits: totalHits, redisGets: t.redisGets },
    commandsSaved: totalHits,
    violations,
    violationCount,
    stall: {
      endedAt: t.stallEnd,
      nearAgainAfterMillis: nearAgain,
      nearRatioNext100Millis: next100 === 0 ? 0 : next100Hits / next100,
      nearRatioNextSecond: nextSecond === 0 ? 0 : nextSecondHits / nextSecond
    },
    saturation: {
      from: t.saturationFrom,
      to: t.saturationTo,
      benchmarkOps: t.benchmarkOps,
      redisCpuShare: t.redisCpuShare
    }
  }
}

const ms = (x: number) => `${x.toFixed(2)} ms`

export const formatReport = (r: LoadReport): string => {
  const s = r.settings
  const lines = [
    `load: ${s.processes} processes × ${s.fibers} fibers, ${s.keys} keys, ${(s.writeRatio * 100).toFixed(0)}% writes, ` +
      `${s.seconds} s, maxStaleness ${s.maxStalenessMillis} ms`,
    "",
    "| phase | reads | near-hit ratio | failed reads | writes | pairs observed | stale near after a write: pairs | lag p50 | lag p99 | lag max |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ...r.phases.map(
      (p) =>
        `| ${p.name} | ${p.reads} | ${(p.nearHitRatio * 100).toFixed(1)}% | ${p.failedReads} | ${p.writes} | ${p.observedPairs} | ` +
        `${p.lag.count} | ${ms(p.lag.p50)} | ${ms(p.lag.p99)} | ${ms(p.lag.max)} |`
    ),
    "",
    `total: ${r.total.reads} reads, ${r.total.nearHits} near hits (${((r.total.nearHits / Math.max(1, r.total.reads)) * 100).toFixed(1)}%); ` +
      `Redis GETs ${r.total.redisGets}: ${r.commandsSaved} GETs saved`,
    `stall of process 0 (${s.stallMillis} ms): first near hit ${r.stall.nearAgainAfterMillis === undefined ? "never" : ms(r.stall.nearAgainAfterMillis)} after it ended; ` +
      `near-hit ratio in the 100 ms after that ${(r.stall.nearRatioNext100Millis * 100).toFixed(1)}%, in the second after the stall ${(r.stall.nearRatioNextSecond * 100).toFixed(1)}%`,
    `saturation: redis-benchmark ${s.saturators} connections, ${r.saturation.benchmarkOps} SETs in ${ms(r.saturation.to - r.saturation.from)}, redis-server busy ${(r.saturation.redisCpuShare * 100).toFixed(0)}% of a core`,
    `checker: ${r.violationCount} violations${r.violations.length > 0 ? ":\n  " + r.violations.join("\n  ") : ""}`
  ]
  return lines.join("\n")
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const seconds = Number(process.env["LOAD_SECONDS"] ?? fullSettings.seconds)
  runLoad({ ...fullSettings, seconds }, (line) => process.stderr.write(line + "\n")).then(
    (report) => {
      process.stdout.write(formatReport(report) + "\n")
      process.exit(report.violationCount === 0 ? 0 : 1)
    },
    (error: unknown) => {
      process.stderr.write(`load: ${String(error)}\n`)
      process.exit(1)
    }
  )
}
