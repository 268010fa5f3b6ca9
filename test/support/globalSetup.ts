/**
 * vitest globalSetup: orphan check for the redis-server processes started by `test/support/RedisServer.ts`.
 *
 * - setup: tags the run (env var inherited by the test workers, which put it into their servers' temp dir names) and
 *   records the redis-server PIDs that already exist (e.g. the machine's own server on 6379).
 * - teardown: any redis-server that was not there before and is still alive is reported. Those whose cwd is one of
 *   this run's temp dirs are orphans of this run: they are SIGKILLed, a loud error is printed and the run fails
 *   (exit code 1). Other new redis-servers (another engineer's concurrent run, ...) are only mentioned, never touched.
 * - if vitest exits without running teardown (it does so e.g. when a worker is SIGKILLed: "Channel closed"), the same
 *   check runs synchronously from the main process' "exit" event.
 */
import { execFileSync } from "node:child_process"
import { randomBytes } from "node:crypto"
import { readdirSync, readFileSync, readlinkSync, rmSync } from "node:fs"
import { RUN_ID_ENV, tempDirMarker } from "./RedisServer.js"

/** Workers are torn down asynchronously (their exit handlers kill leftovers): give them a moment. */
const GRACE_MS = 5_000
/** Grace period in the synchronous exit-event fallback (blocks the exiting process). */
const EXIT_GRACE_MS = 1_000
const POLL_MS = 100

let runId = ""
let before = new Set<number>()
let checked = false

export function setup(): void {
  runId = `run${process.pid}_${randomBytes(4).toString("hex")}`
  process.env[RUN_ID_ENV] = runId
  before = new Set(redisServerPids())
  // prepended: vitest's own "exit" listener calls process.exit() again, which ends the process on the spot
  process.prependOnceListener("exit", () => {
    if (checked) return
    let orphans = findOrphans()
    const deadline = Date.now() + EXIT_GRACE_MS
    while (orphans.ours.length > 0 && Date.now() < deadline) {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, POLL_MS)
      orphans = findOrphans()
    }
    if (report(orphans, "vitest exited without running globalSetup teardown")) process.exitCode = 1
  })
}

export async function teardown(): Promise<void> {
  checked = true
  let orphans = findOrphans()
  const deadline = Date.now() + GRACE_MS
  while (orphans.ours.length > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, POLL_MS))
    orphans = findOrphans()
  }
  if (report(orphans, "globalSetup teardown")) process.exitCode = 1
}

interface ProcInfo {
  readonly pid: number
  readonly cwd: string | undefined
  readonly cmdline: string
}

interface Orphans {
  /** New, alive redis-servers whose cwd is one of this run's temp dirs. */
  readonly ours: ReadonlyArray<ProcInfo>
  /** New, alive redis-servers that cannot be attributed to this run. */
  readonly foreign: ReadonlyArray<ProcInfo>
}

const findOrphans = (): Orphans => {
  const marker = tempDirMarker(runId)
  const alive = redisServerPids()
    .filter((pid) => !before.has(pid))
    .map(procInfo)
    .filter((info): info is ProcInfo => info !== undefined)
  return {
    ours: alive.filter((info) => info.cwd?.includes(marker) === true),
    foreign: alive.filter((info) => info.cwd?.includes(marker) !== true)
  }
}

/** Prints the findings, SIGKILLs this run's orphans; returns whether there were any. */
const report = (orphans: Orphans, when: string): boolean => {
  if (orphans.foreign.length > 0) {
    console.warn(
      `[redis orphan check] note: new redis-server processes not started by this run (left untouched):\n` +
        orphans.foreign.map(describeProc).join("\n")
    )
  }
  if (orphans.ours.length === 0) return false
  for (const info of orphans.ours) {
    try {
      process.kill(info.pid, "SIGKILL")
    } catch {
      // already gone
    }
    const dir = info.cwd?.replace(/ \(deleted\)$/, "")
    if (dir !== undefined && dir.includes(tempDirMarker(runId))) rmSync(dir, { recursive: true, force: true })
  }
  const bar = "!".repeat(100)
  console.error(
    `\n${bar}\n[redis orphan check, ${when}] ${orphans.ours.length} redis-server process(es) started by this test ` +
      `run were still alive after all tests finished (now SIGKILLed). A test or the harness leaks servers:\n` +
      `${orphans.ours.map(describeProc).join("\n")}\n${bar}\n`
  )
  return true
}

const describeProc = (info: ProcInfo): string => `  pid ${info.pid}: ${info.cmdline} (cwd ${info.cwd ?? "unknown"})`

/** PIDs of processes named exactly `redis-server` (`pgrep -x`, exit code 1 = none; falls back to scanning /proc). */
const redisServerPids = (): Array<number> => {
  try {
    return parsePids(execFileSync("pgrep", ["-x", "redis-server"], { encoding: "utf8", timeout: 5_000 }))
  } catch (error) {
    if ((error as { status?: unknown }).status === 1) return []
    console.warn(`[redis orphan check] pgrep failed (${String(error)}), scanning /proc instead`)
  }
  const pids: Array<number> = []
  for (const entry of readdirSync("/proc")) {
    if (/^\d+$/.test(entry) && readOr(`/proc/${entry}/comm`, "").trim() === "redis-server") pids.push(Number(entry))
  }
  return pids
}

const parsePids = (stdout: string): Array<number> =>
  stdout
    .split(/\s+/)
    .filter((s) => /^\d+$/.test(s))
    .map(Number)

/** `undefined` if the process is gone or a zombie (already dead, just not reaped yet). */
const procInfo = (pid: number): ProcInfo | undefined => {
  const stat = readOr(`/proc/${pid}/stat`, undefined)
  if (stat === undefined) return undefined
  const state = stat.slice(stat.lastIndexOf(")") + 2).charAt(0)
  if (state === "Z" || state === "X" || state === "x") return undefined
  let cwd: string | undefined
  try {
    cwd = readlinkSync(`/proc/${pid}/cwd`)
  } catch {
    cwd = undefined
  }
  return { pid, cwd, cmdline: readOr(`/proc/${pid}/cmdline`, "").replace(/\0+/g, " ").trim() }
}

const readOr = <A>(path: string, fallback: A): string | A => {
  try {
    return readFileSync(path, "utf8")
  } catch {
    return fallback
  }
}
