/**
 * Outages under load (CI variant, a few seconds per fault and mode): 200 fibers of keyspace
 * get/set, getOrCompute, rate-limit decisions and nonce claims while a real redis-server is
 * killed, paused, restarted empty, flapped and slowed. Every invariant of docs/outages.md is a
 * failing assertion; `npm run chaos` runs the long variant and prints the table.
 *
 * A near-cache keyspace takes part: two nodes write versioned values and read them through their
 * near caches, and every read is judged (never invented, no near hit older than the invalidation
 * bound, none while Redis is down beyond maxStaleness, none of what a restart lost).
 */
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { redisServer } from "../support/RedisServer.js"
import { ciSettings, type ModeName, nearBoundMillis, type Report, runScenario } from "./driver.js"
import { ciFaults } from "./faults.js"
import { describeReport, table } from "./format.js"

const behaviour: Record<string, string> = {
  "kill-restart": "when Redis is killed and restarted on the same port",
  "pause-resume": "when Redis is paused (SIGSTOP) and resumed",
  "restart-empty": "when Redis restarts and comes back empty",
  flapping: "when Redis goes down and up several times a second",
  slow: "when Redis answers around the command timeout (DEBUG SLEEP)"
}

const reports: Array<Report> = []

afterAll(() => {
  if (reports.length === 0) return
  console.log(
    `chaos (CI variant, latencies in ms; near hits/near reads, near stale max: the latest a near hit returned a ` +
      `version after a newer write had completed, bound ${nearBoundMillis(ciSettings)} ms):\n${table(reports)}`
  )
})

const modes: ReadonlyArray<ModeName> = ["StrictDistributed", "ExplicitDegraded"]

for (const mode of modes) {
  describe(`${mode} under 200 fibers of load`, () => {
    for (const fault of ciFaults(ciSettings.commandTimeoutMillis)) {
      it.scopedLive(
        `keeps every invariant ${behaviour[fault.name] ?? fault.description}`,
        () =>
          Effect.gen(function* () {
            const server = yield* redisServer()
            const report = yield* runScenario(server, mode, fault, ciSettings)
            reports.push(report)
            expect(report.violations, describeReport(report)).toEqual([])
            // the run did what it says: real load, and the fault was seen
            expect(report.totals.ops).toBeGreaterThan(2_000)
            expect(report.events.runtime).toBeGreaterThanOrEqual(1)
            // the near-cache keyspace served near hits outside the fault: its checks did not pass vacuously
            expect(report.near.hitsOutsideFault).toBeGreaterThan(0)
          }),
        30_000
      )
    }
  })
}
