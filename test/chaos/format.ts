/**
 * Renders chaos reports as a fixed-width table (for `npm run chaos`, the docs and failing tests).
 */
import type { Report } from "./driver.js"

const ms = (x: number | undefined): string => (x === undefined ? "-" : x < 10 ? x.toFixed(1) : x.toFixed(0))
const mib = (bytes: number): string => (bytes / 1048576).toFixed(1)

const COLUMNS = [
  "mode",
  "fault",
  "ops",
  "ops/s",
  "ok",
  "unavail",
  "degraded",
  "other",
  "defects",
  "before p50/p99/max",
  "during p50/p99/max",
  "after p50/p99/max",
  "recovery",
  "refusal max",
  "events rt/rec",
  "heap MiB before→after",
  "stall max",
  "near hits",
  "near stale max",
  "violations"
] as const

const row = (r: Report): Array<string> => {
  const lat = (p: Report["phases"]["before"]) => `${ms(p.p50)}/${ms(p.p99)}/${ms(p.max)}`
  return [
    r.mode === "StrictDistributed" ? "strict" : "degraded",
    r.fault,
    String(r.totals.ops),
    r.opsPerSecond.toFixed(0),
    String(r.totals.ok),
    String(r.totals.unavailable),
    String(r.totals.degraded),
    String(r.totals.other),
    String(r.totals.defects),
    lat(r.phases.before),
    lat(r.phases.during),
    lat(r.phases.after),
    r.recoveryMillis === undefined ? "never" : `${ms(r.recoveryMillis)} ms`,
    r.cooldownMaxMillis === undefined ? "-" : `${ms(r.cooldownMaxMillis)} ms`,
    `${r.events.runtime}/${r.events.recovered}`,
    `${mib(r.memory.heapBefore)}→${mib(r.memory.heapAfter)}`,
    `${ms(r.stallMaxMillis)} ms`,
    `${r.near.hits}/${r.near.reads}`,
    r.near.staleMaxMillis === undefined ? "-" : `${ms(r.near.staleMaxMillis)} ms`,
    String(r.violations.length)
  ]
}

/** A markdown table of the reports (latencies in milliseconds). */
export const table = (reports: ReadonlyArray<Report>): string => {
  const rows = [Array.from(COLUMNS), ...reports.map(row)]
  const widths = COLUMNS.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
  const line = (cells: ReadonlyArray<string>) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`
  return [line(rows[0]!), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...rows.slice(1).map(line)].join("\n")
}

/** One report in a few lines, for a failing assertion. */
export const describeReport = (r: Report): string =>
  [
    table([r]),
    `timeline: fault ${(r.timeline.startedAt - r.timeline.start).toFixed(0)} ms after start, Redis back after ` +
      `${(r.timeline.backAt - r.timeline.startedAt).toFixed(0)} ms, ${r.timeline.downs} down(s); ` +
      `${r.opsPerSecond.toFixed(0)} ops/s; cooldown refusals max ${ms(r.cooldownMaxMillis)} ms; ` +
      `slow unavailable calls ${r.slowUnavailable}; stalls: longest ${ms(r.stallMaxMillis)} ms, total ` +
      `${ms(r.stallTotalMillis)} ms, ${r.longStalls} of at least half the command timeout`,
    `near cache: ${r.near.hits} near hits of ${r.near.reads} reads (${r.near.hitsOutsideFault} outside the fault), ` +
      `${r.near.writes} writes (${r.near.unknownFate} of unknown fate, ${r.near.exempt} reads of those not judged), ` +
      `stale at most ${ms(r.near.staleMaxMillis)} ms (bound ${r.near.boundMillis} ms)`,
    ...r.violations.map((v) => `VIOLATION ${v}`)
  ].join("\n")
