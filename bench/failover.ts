/**
 * `tsx --conditions=source bench/failover.ts`: the unavailability window of a failover, measured several times per
 * topology and fault, with the library's default settings (commandTimeout 300 ms, cooldown 500 ms, cluster
 * slotsRefreshInterval 1 s) and StrictDistributed. Each run kills or pauses (SIGSTOP) the master that owns a busy
 * key while 2 × 8 fibers run get/set, replay claims and rate-limit decisions on it and on a key of another shard;
 * the client is never touched. Printed: medians (and ranges) of the time Redis took to promote a replica and of the
 * time the busy key was unavailable to the client. Figures, not assertions: they depend on the machine.
 *
 * Options: --runs=N (default 5), --topology=cluster|sentinel, --fault=kill|pause, --json,
 *   --svg=<dir> (default docs/img): the timeline of the median run of each line, as failover-<topology>-<fault>.svg;
 *   --no-svg: no pictures
 *
 * Redis settings: cluster-node-timeout 1000 ms (cluster-require-full-coverage no); sentinel down-after-milliseconds
 * 1000 ms, quorum 2 of 3.
 */
import { join } from "node:path"
import { Effect, Layer } from "effect"
import { RedisClient, strictDistributed } from "effect-failclosed"
import { startRedisCluster } from "../test/support/RedisCluster.js"
import { startRedisSentinel } from "../test/support/RedisSentinel.js"
import {
  median,
  pickClusterVictim,
  type RunResult,
  runUnderLoad,
  type Sample,
  type Summary,
  summarize
} from "../test/topologies/failover.js"
import { bucketize, timelineSvg, writeSvg } from "./charts.js"
import { runProgress } from "./runProgress.js"

type Topology = "cluster" | "sentinel"
type Fault = "kill" | "pause"

const args = process.argv.slice(2)
const option = (name: string) => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3)
const runs = Number(option("runs") ?? 5)
const topologies: ReadonlyArray<Topology> =
  option("topology") === undefined ? ["cluster", "sentinel"] : [option("topology") as Topology]
const faults: ReadonlyArray<Fault> = option("fault") === undefined ? ["kill", "pause"] : [option("fault") as Fault]
const svgDir = args.includes("--no-svg") ? undefined : (option("svg") ?? "docs/img")
const progress = runProgress("failover", topologies.length * faults.length * runs)
const faultName = (fault: Fault) => (fault === "kill" ? "master killed" : "master paused")

interface Run {
  readonly result: RunResult
  readonly summary: Summary
}

const inject = (fault: Fault, server: { kill(): Promise<void>; pause(): void }) =>
  fault === "kill" ? server.kill() : Promise.resolve(server.pause())

/** one cluster serves one run per shard (each shard's master has one replica to promote) */
const clusterRuns = async (fault: Fault, count: number): Promise<Array<Run>> => {
  const summaries: Array<Run> = []
  while (summaries.length < count) {
    const cluster = await startRedisCluster()
    try {
      for (let shard = 0; shard < 3 && summaries.length < count; shard++) {
        progress.step(`cluster, ${faultName(fault)}, run ${summaries.length + 1} of ${count}`)
        const { busyTag, otherTag, slot, victim } = await pickClusterVictim(cluster)
        const keyPrefix = `bench${summaries.length}`
        const cache = strictDistributed({ keyPrefix }).pipe(
          Layer.provide(RedisClient.layerCluster({ nodes: cluster.nodes }))
        )
        const result = await Effect.runPromise(
          Effect.scoped(
            Effect.flatMap(Layer.build(Layer.fresh(cache)), (node) =>
              runUnderLoad({
                node,
                keyPrefix,
                busyTag,
                otherTag,
                fault: () => inject(fault, victim),
                promoted: () => cluster.waitForPromotion(slot, victim).then(() => undefined)
              })
            )
          )
        )
        summaries.push({ result, summary: summarize(result) })
      }
    } finally {
      await cluster.stop()
    }
  }
  return summaries
}

const sentinelRuns = async (fault: Fault, count: number): Promise<Array<Run>> => {
  const summaries: Array<Run> = []
  for (let i = 0; i < count; i++) {
    progress.step(`sentinel, ${faultName(fault)}, run ${i + 1} of ${count}`)
    const setup = await startRedisSentinel()
    try {
      const victim = await setup.master()
      const keyPrefix = `bench${i}`
      const cache = strictDistributed({ keyPrefix }).pipe(
        Layer.provide(RedisClient.layerSentinel({ sentinels: setup.sentinelAddresses, name: setup.name }))
      )
      const result = await Effect.runPromise(
        Effect.scoped(
          Effect.flatMap(Layer.build(cache), (node) =>
            runUnderLoad({
              node,
              keyPrefix,
              busyTag: "busy",
              otherTag: "other",
              fault: () => inject(fault, victim),
              promoted: () => setup.waitForFailover(victim).then(() => undefined)
            })
          )
        )
      )
      summaries.push({ result, summary: summarize(result) })
    } finally {
      await setup.stop()
    }
  }
  return summaries
}

const range = (values: ReadonlyArray<number>) =>
  `${(median(values) / 1000).toFixed(1)} s (${(Math.min(...values) / 1000).toFixed(1)}–${(Math.max(...values) / 1000).toFixed(1)})`

const outcomeOf = (s: Sample) =>
  s.outcome === "ok"
    ? s.degraded
      ? "degraded"
      : "ok"
    : s.outcome === "CacheBackendUnavailable"
      ? "unavailable"
      : "other"

/** the picture of one run: operations per 100 ms on the busy key and on the other, the fault, the promotion, the end */
const timeline = (topology: Topology, fault: Fault, { result, summary }: Run) => {
  const start = Math.min(...result.samples.map((s) => s.start))
  const end = Math.max(...result.samples.map((s) => s.end))
  const panel = (target: Sample["target"], label: string) => ({
    label,
    buckets: bucketize(
      result.samples.filter((s) => s.target === target),
      { start, end, endOf: (s) => s.end, outcomeOf }
    )
  })
  return timelineSvg({
    title: `StrictDistributed: ${topology}, ${faultName(fault)}`,
    subtitle: [
      `npm run failover: the run with the median unavailability of ${runs}; 2 × 8 fibers`,
      `the library's defaults (commandTimeout 300 ms, cooldown 500 ms), ` +
        (topology === "cluster" ? "cluster-node-timeout 1000 ms" : "Sentinel down-after-milliseconds 1000 ms")
    ],
    panels: [
      panel("busy", "busy key (its master fails)"),
      panel("other", topology === "cluster" ? "a key of another shard" : "another key (the same master: one master)")
    ],
    markers: [
      { at: result.faultAt - start, label: `master ${fault === "kill" ? "killed" : "paused"}` },
      { at: result.promotedAt - start, label: "replica promoted" },
      { at: result.faultAt + summary.windowMillis - start, label: "busy key served again" }
    ]
  })
}

const medianRun = (all: ReadonlyArray<Run>): Run =>
  [...all].sort((a, b) => a.summary.windowMillis - b.summary.windowMillis)[Math.floor((all.length - 1) / 2)]!

const rows: Array<Record<string, string | number>> = []
for (const topology of topologies) {
  for (const fault of faults) {
    const all = topology === "cluster" ? await clusterRuns(fault, runs) : await sentinelRuns(fault, runs)
    const summaries = all.map((r) => r.summary)
    if (svgDir !== undefined && all.length > 0) {
      const path = join(svgDir, `failover-${topology}-${fault}.svg`)
      writeSvg(path, await timeline(topology, fault, medianRun(all)))
      progress.log(`  ${topology}, ${faultName(fault)} → ${path}`)
    }
    rows.push({
      topology,
      fault: faultName(fault),
      runs: summaries.length,
      "promotion (Redis)": range(summaries.map((s) => s.failoverMillis)),
      "unavailable (client)": range(summaries.map((s) => s.windowMillis)),
      "slowest operation": `${Math.round(Math.max(...summaries.map((s) => s.maxLatencyMillis)))} ms`,
      "other shard failures": topology === "cluster" ? summaries.reduce((n, s) => n + s.other.failed, 0) : "n/a"
    })
  }
}
progress.done()

if (args.includes("--json")) {
  console.log(JSON.stringify(rows, null, 2))
} else {
  const columns = Object.keys(rows[0] ?? {})
  const line = (cells: ReadonlyArray<string>) => `| ${cells.join(" | ")} |`
  console.log(line(columns))
  console.log(line(columns.map(() => "---")))
  for (const row of rows) console.log(line(columns.map((c) => String(row[c]))))
}
