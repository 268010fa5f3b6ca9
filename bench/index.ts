/**
 * `npm run bench`: starts its own redis-server on a free loopback port, measures this library
 * against raw ioredis, effect's Cache and lru-cache in one run (interleaved rounds, medians),
 * then the memory figures in a child process, prints a Markdown report and stops the server.
 *
 *   npm run bench                      # full run (about 4 minutes)
 *   BENCH_QUICK=1 npm run bench        # a fast, noisier run
 *   BENCH_ONLY=local,redis npm run bench   # some sections (local, redis, features, batches, ratelimit, mode, memory, effect4)
 *   BENCH_CHART=out.svg npm run bench  # the ratio bar chart elsewhere (default docs/img/performance.svg; not for a quick run)
 *   BENCH_JSON=out.json npm run bench  # also write every figure as JSON: { commit, versions, redis,
 *                                      #   settings, results: Result[] (harness.ts), memory }
 *
 * While it runs, stderr shows the section, the case (i of n), its round and the time elapsed: one
 * updating line on a terminal, plain lines otherwise. Redis cases also read redis-server's CPU
 * (`INFO cpu`) around every sample.
 *
 * Figures are ratios measured in the same run; nothing here asserts a wall-clock time.
 */
import { execSync, spawn } from "node:child_process"
import { writeFileSync } from "node:fs"
import * as os from "node:os"
import { fileURLToPath } from "node:url"
import { startRedis } from "../test/support/RedisServer.js"
import { KEYS, PAYLOAD_BYTES, repoRoot, serverCpuProbe, versions } from "./fixtures.js"
import {
  type Case,
  QUICK,
  type Result,
  runCase,
  type ServerCpu,
  type Settings,
  targetSummary,
  toMarkdown
} from "./harness.js"
import { writePerformanceChart } from "./charts.js"
import { batchCases } from "./batches.js"
import { featureCases } from "./features.js"
import { localCases } from "./local.js"
import type { MemoryReport } from "./memory.js"
import { modeCases } from "./mode.js"
import { makeProgress, type Progress } from "./progress.js"
import { rateLimitCases } from "./ratelimit.js"
import { redisCases, redisVersion } from "./redis.js"

const settings: Settings = QUICK
  ? { rounds: 3, sampleMillis: 50, warmupOps: 1024 }
  : { rounds: 11, sampleMillis: 200, warmupOps: 1024 }

// effect4: the Effect 4 line's rows, run after this script by `npm run bench` (effect4/bench/index.ts, on Node 24)
const only = new Set(
  (process.env["BENCH_ONLY"] ?? "local,redis,features,batches,ratelimit,mode,memory,effect4")
    .split(",")
    .map((s) => s.trim())
)

const log = (line: string) => process.stderr.write(line + "\n")

interface Section {
  readonly title: string
  readonly cases: ReadonlyArray<Case>
  /** run just before the section's first case (a warm-up) */
  readonly prepare?: (() => Promise<void>) | undefined
  readonly close: () => Promise<void>
  readonly settings: Settings
}

const runSection = async (section: Section, progress: Progress, results: Array<Result>) => {
  progress.section(section.title)
  if (section.prepare !== undefined) {
    progress.line("  warming up every side")
    await section.prepare()
  }
  for (const c of section.cases) {
    const started = Date.now()
    progress.caseStarted(`${c.group} · ${c.name}`)
    const r = await runCase(c, section.settings, progress.step)
    results.push(r)
    const ratios = r.baselines
      .map(
        (b) =>
          `${b.ratio.toFixed(2)}× ${b.label}` +
          (b.redisCpuRatio === undefined ? "" : ` (Redis CPU ${b.redisCpuRatio.toFixed(2)}×)`)
      )
      .join(", ")
    progress.line(`  ${c.group} · ${c.name}: ${ratios} (${((Date.now() - started) / 1000).toFixed(1)} s)`)
  }
}

/** the commit measured (with "+changes" when the work tree differs from it) */
const commitMeasured = (): string => {
  const git = (args: string) => execSync(`git ${args}`, { cwd: fileURLToPath(repoRoot), encoding: "utf8" }).trim()
  try {
    return git("rev-parse --short HEAD") + (git("status --porcelain") === "" ? "" : "+changes")
  } catch {
    return "?"
  }
}

const measureMemoryInChild = (url: string): Promise<MemoryReport> =>
  new Promise((resolve, reject) => {
    // memory.ts, or memory.js next to this file once compiled (see `npm run bench`)
    const file = fileURLToPath(
      new URL(import.meta.url.endsWith(".ts") ? "./memory.ts" : "./memory.js", import.meta.url)
    )
    const child = spawn(process.execPath, [...process.execArgv, "--expose-gc", file, url], {
      stdio: ["ignore", "pipe", "inherit"],
      env: process.env
    })
    let out = ""
    child.stdout.setEncoding("utf8")
    child.stdout.on("data", (d: string) => (out += d))
    child.on("error", reject)
    child.on("exit", (code) => {
      if (code !== 0) return reject(new Error(`bench/memory.ts exited with ${code}`))
      try {
        resolve(JSON.parse(out.trim().split("\n").pop() ?? "") as MemoryReport)
      } catch (e) {
        reject(e)
      }
    })
  })

const mb = (n: number) => (n / 1024 / 1024).toFixed(1) + " MiB"

const memoryMarkdown = (m: MemoryReport): string => {
  const ratio = (n: number) => (n / m.valueBytes).toFixed(2) + "×"
  const first = m.rss.samples[0]!
  const last = m.rss.samples[m.rss.samples.length - 1]!
  return [
    `LocalOnly store and near cache, ${m.entries.toLocaleString("en-US")} entries, encoded value ${m.valueBytes.toFixed(0)} bytes ` +
      `(heap delta / entries, after a full GC):`,
    "",
    "| store | bytes per entry | per entry / encoded value | target |",
    "|---|---:|---:|---|",
    `| LocalOnly keyspace | ${m.perEntry.localOnly.toFixed(0)} | ${ratio(m.perEntry.localOnly)} | ≤ 3.00× ${
      m.perEntry.localOnly / m.valueBytes <= 3 ? "met" : "**missed**"
    } |`,
    `| bare Map<string, string>, same keys and values (floor) | ${m.perEntry.map.toFixed(0)} | ${ratio(m.perEntry.map)} | |`,
    `| lru-cache, same keys and values | ${m.perEntry.lruCache.toFixed(0)} | ${ratio(m.perEntry.lruCache)} | |`,
    `| near cache of a Redis keyspace (JSON + decoded frozen value) | ${m.perEntry.near.toFixed(0)} | ${ratio(m.perEntry.near)} | |`,
    "",
    `Process memory around ${m.rss.operations.toLocaleString("en-US")} mixed keyspace operations against Redis ` +
      `(StrictDistributed, 256 in flight; after a full GC):`,
    "",
    "| operations done | RSS | heap used |",
    "|---:|---:|---:|",
    ...m.rss.samples.map(([done, rss, heap]) => `| ${done.toLocaleString("en-US")} | ${mb(rss)} | ${mb(heap)} |`),
    "",
    `RSS after / before: ${(last[1] / first[1]).toFixed(2)}× (${mb(last[1] - first[1])}); ` +
      `heap after / before: ${(last[2] / first[2]).toFixed(2)}×`
  ].join("\n")
}

const main = async () => {
  const startedAt = Date.now()
  const load = os.loadavg()
  const commit = commitMeasured()
  const server = await startRedis()
  const results: Array<Result> = []
  const sections: Array<Section> = []
  let memory: MemoryReport | undefined
  let redis = "?"
  let probe: { readonly read: ServerCpu; readonly close: () => void } | undefined
  try {
    redis = await redisVersion(server.url)
    log(`bench: redis-server ${redis} on ${server.url}, commit ${commit}${QUICK ? " (BENCH_QUICK)" : ""}`)
    probe = await serverCpuProbe(server.url)
    // every section is set up first, so that progress can say "case i of n"
    const setUp = async (
      key: string,
      title: string,
      build: () => Promise<Omit<Section, "title" | "settings">>,
      s = settings
    ) => {
      if (!only.has(key)) return
      log(`setting up: ${title}`)
      sections.push({ title, settings: s, ...(await build()) })
    }
    const cpu = probe.read
    await setUp("local", "LocalOnly vs in-process caches", localCases)
    await setUp("redis", "Redis paths vs raw ioredis", () => redisCases(server.url, cpu))
    // the difference the mode cases look for is a few percent: twice the rounds, so that the medians settle
    await setUp("mode", "Mode overhead and layers", () => modeCases(server.url, cpu), {
      ...settings,
      rounds: settings.rounds * 2 - 1
    })
    // after the sections whose Redis figures are targets: its near cache's tracking prefix is checked on every write
    await setUp("features", "Near cache, getOrCompute options and PersistedCache", () => featureCases(server.url, cpu))
    // after features: its tagged keyspaces open tracking prefixes of their own (checked by Redis on every write)
    await setUp("batches", "Batches and tags", () => batchCases(server.url, cpu, log))
    // last of the Redis sections: its claims and decisions write keys that expire within seconds, and their expiry
    // costs Redis CPU that would land in the samples of the section after it
    await setUp("ratelimit", "Rate limits and replay guard vs raw EVALSHA / SET NX PX / rate-limiter-flexible", () =>
      rateLimitCases(server.url, cpu)
    )
    const total = sections.reduce((n, s) => n + s.cases.length, 0) + (only.has("memory") ? 1 : 0)
    const progress = makeProgress(total)
    try {
      for (const section of sections) await runSection(section, progress, results)
      if (only.has("memory")) {
        progress.section("Memory (child process)")
        progress.caseStarted("Memory · LocalOnly bytes per entry, RSS around mixed operations")
        memory = await measureMemoryInChild(server.url)
      }
    } finally {
      progress.end()
    }
  } finally {
    for (const s of sections) await s.close()
    probe?.close()
    await server.stop()
  }

  const v = versions()
  const cpus = os.cpus()
  const report = [
    `# effect-failclosed benchmark`,
    "",
    `effect-failclosed ${v["effect-failclosed"]} (commit ${commit}) · effect ${v.effect} · ioredis ${v.ioredis} · ` +
      `lru-cache ${v["lru-cache"]} · bentocache ${v.bentocache} · rate-limiter-flexible ${v["rate-limiter-flexible"]} · ` +
      `Node ${v.node} · Redis ${redis} (loopback, no persistence)`,
    `${cpus.length} × ${cpus[0]?.model ?? "?"} · ${os.platform()} ${os.release()} · load average at start ` +
      `${load.map((l) => l.toFixed(2)).join(" ")}`,
    `payload ${PAYLOAD_BYTES} bytes of JSON, ${KEYS.toLocaleString("en-US")} distinct keys · ${settings.rounds} interleaved ` +
      `rounds of ~${settings.sampleMillis} ms per side; medians; ratio = median of per-round library / baseline` +
      (QUICK ? " · BENCH_QUICK" : ""),
    "",
    results.length > 0 ? toMarkdown(results) : "",
    "",
    results.length > 0 ? targetSummary(results) : "",
    "",
    memory !== undefined ? memoryMarkdown(memory) : "",
    "",
    `total ${((Date.now() - startedAt) / 1000).toFixed(0)} s`
  ].join("\n")
  process.stdout.write(report + "\n")
  const json = process.env["BENCH_JSON"]
  if (json !== undefined && json !== "") {
    writeFileSync(json, JSON.stringify({ commit, versions: v, redis, settings, results, memory }, null, 2))
  }
  // the bar chart of the ratio table beside docs/performance.md (a quick run only where BENCH_CHART asks for it)
  const chart = process.env["BENCH_CHART"] ?? (QUICK ? "" : "docs/img/performance.svg")
  if (chart !== "" && results.length > 0) {
    await writePerformanceChart(results, chart)
    log(`bar chart of the ratios: ${chart}`)
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error)
    process.exit(1)
  }
)
