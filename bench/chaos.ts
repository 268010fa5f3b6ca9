/**
 * `npm run chaos`: the long variant of the fault-injection suite (test/chaos). For each mode
 * (StrictDistributed, ExplicitDegraded) and each fault (kill and restart, pause and resume,
 * restart that comes back empty, flapping, slow Redis), 200 fibers of load run against a fresh
 * redis-server for a few seconds before, during and after the fault; the figures are printed as
 * one table, followed by every broken invariant.
 *
 * Options:
 *   --quick              the CI phases and faults (a few seconds each)
 *   --defaults           the library's default timeouts (commandTimeout 300 ms, cooldown 500 ms,
 *                        maxReconnectDelay 500 ms, connectTimeout 1 s) instead of the short test ones
 *   --mode=strict|degraded, --fault=<name>   run a subset
 *   --json               print the reports as JSON instead of the table
 *   --svg=<dir>          where the timeline of each run goes (default docs/img, as chaos-<mode>-<fault>.svg, with
 *                        a -defaults suffix under --defaults; under --quick only when --svg is given)
 *   --no-svg             no pictures
 *   --check              exit with status 1 when an invariant was broken (timing invariants
 *                        depend on the machine; by default they are reported, not enforced)
 */
import { join } from "node:path"
import { Effect } from "effect"
import { ciSettings, type ModeName, type Report, runScenario, type Settings } from "../test/chaos/driver.js"
import { ciFaults, longFaults } from "../test/chaos/faults.js"
import { table } from "../test/chaos/format.js"
import { startRedis } from "../test/support/RedisServer.js"
import { type Marker, timelineSvg, writeSvg } from "./charts.js"
import { runProgress } from "./runProgress.js"

const args = process.argv.slice(2)
const flag = (name: string) => args.includes(`--${name}`)
const option = (name: string) => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3)

const quick = flag("quick")
const timeouts: Partial<Settings> = flag("defaults")
  ? { commandTimeoutMillis: 300, cooldownMillis: 500, maxReconnectDelayMillis: 500, connectTimeoutMillis: 1_000 }
  : {}
const settings: Settings = quick
  ? { ...ciSettings, ...timeouts }
  : { ...ciSettings, ...timeouts, beforeMillis: 3_000, afterMillis: 5_000, capacity: 1_000_000 }

const modeFilter = option("mode")
const modes: ReadonlyArray<ModeName> = (["StrictDistributed", "ExplicitDegraded"] as const).filter(
  (m) => modeFilter === undefined || m.toLowerCase().includes(modeFilter.toLowerCase())
)
const faultFilter = option("fault")
const faults = (quick ? ciFaults : longFaults)(settings.commandTimeoutMillis).filter(
  (f) => faultFilter === undefined || f.name === faultFilter
)

const svgDir = flag("no-svg") ? undefined : (option("svg") ?? (quick ? undefined : "docs/img"))
const short = (mode: ModeName) => (mode === "StrictDistributed" ? "strict" : "degraded")

/** the picture of one run: operations per 100 ms by outcome, the fault, Redis back, traffic served by Redis again */
const timeline = (r: Report) => {
  const t = r.timeline
  const markers: Array<Marker> = [
    { at: t.startedAt - t.start, label: "fault" },
    { at: t.backAt - t.start, label: "Redis back" }
  ]
  if (r.recoveryMillis !== undefined) {
    markers.push({ at: t.backAt + r.recoveryMillis - t.start, label: "served by Redis again" })
  }
  const s = r.settings
  return timelineSvg({
    title: `${r.mode}: ${r.fault} (${r.description})`,
    subtitle: [
      `npm run chaos${flag("defaults") ? " -- --defaults" : ""}: ${s.fibers} fibers, commandTimeout ` +
        `${s.commandTimeoutMillis} ms, cooldown ${s.cooldownMillis} ms, maxReconnectDelay ` +
        `${s.maxReconnectDelayMillis} ms`
    ],
    panels: [{ buckets: r.buckets }],
    markers
  })
}

const main = async () => {
  const reports: Array<Report> = []
  const progress = runProgress("chaos", modes.length * faults.length)
  progress.log(
    `chaos: ${settings.fibers} fibers, commandTimeout ${settings.commandTimeoutMillis} ms, cooldown ` +
      `${settings.cooldownMillis} ms, maxReconnectDelay ${settings.maxReconnectDelayMillis} ms, phases ` +
      `${settings.beforeMillis} ms before / fault / ${settings.afterMillis} ms after`
  )
  for (const mode of modes) {
    for (const fault of faults) {
      progress.step(`${mode} ${fault.name}`)
      const server = await startRedis()
      try {
        const report = await Effect.runPromise(runScenario(server, mode, fault, settings))
        reports.push(report)
        let picture = ""
        if (svgDir !== undefined) {
          const path = join(svgDir, `chaos-${short(mode)}-${fault.name}${flag("defaults") ? "-defaults" : ""}.svg`)
          writeSvg(path, await timeline(report))
          picture = ` → ${path}`
        }
        progress.log(
          `  ${mode} ${fault.name} (${fault.description}): ${report.totals.ops} ops, ` +
            `${report.violations.length} violation(s)${picture}`
        )
      } finally {
        await server.stop()
      }
    }
  }
  progress.done()
  if (flag("json")) {
    console.log(JSON.stringify(reports, null, 2))
  } else {
    console.log(`\n${table(reports)}\n`)
    console.log(
      "ops: operations settled; unavail: failed with CacheBackendUnavailable; degraded: served by the " +
        "node-local fallback (marked); latencies in ms by the phase the operation started in; recovery: Redis " +
        "back → first operation served by Redis; events rt/rec: BACKEND_UNAVAILABLE_AT_RUNTIME / BACKEND_RECOVERED; " +
        "stall max: longest interval in which this process ran no timer at all."
    )
    for (const r of reports) {
      for (const v of r.violations) console.log(`VIOLATION ${r.mode} ${r.fault}: ${v}`)
    }
  }
  const broken = reports.reduce((n, r) => n + r.violations.length, 0)
  console.error(`chaos: ${broken} broken invariant(s) in ${reports.length} run(s)`)
  if (flag("check") && broken > 0) process.exitCode = 1
}

main().catch((error: unknown) => {
  console.error(error)
  process.exitCode = 1
})
