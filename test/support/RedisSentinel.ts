/**
 * Test harness for Sentinel-managed replication: one master and one replica (`redis-server`s started, tracked and
 * cleaned up by `RedisServer.ts`) and three sentinels with a short `down-after-milliseconds`, so that a failover
 * takes a few seconds.
 *
 * Sentinels need a writable config file as their first argument (`redis-server <conf> --sentinel`), which the
 * `RedisServer.ts` harness cannot pass; they are started here with the same safety rules: loopback only, never port
 * 6379/26379, readiness only once the answering server reports the PID we spawned, only our own PIDs are ever
 * signalled, every live sentinel is SIGKILLed synchronously on process exit (and on SIGINT/SIGTERM/SIGHUP), and its
 * temp dir (its cwd, named like the harness' dirs so that the global orphan check attributes it to this run) is
 * removed.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process"
import { rmSync } from "node:fs"
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import type { Scope } from "effect"
import { freePort, HOST, onProcessEnd, RUN_ID_ENV, type RedisServer, startRedis, tempDirMarker } from "./RedisServer.js"

export interface StartSentinelOptions {
  /** `sentinel down-after-milliseconds` (default 1000) */
  readonly downAfterMs?: number
  /** `sentinel failover-timeout` (default 5000) */
  readonly failoverTimeoutMs?: number
  /** how long to wait for the sentinels to know each other and the replica (default 20 s) */
  readonly readyTimeoutMs?: number
}

export interface SentinelProcess {
  readonly port: number
  readonly pid: number
  readonly isRunning: boolean
  kill(): Promise<void>
  pause(): void
  resume(): void
  stop(): Promise<void>
  command(...args: Array<string>): Promise<string>
}

export interface RedisSentinelSetup {
  /** the monitored master's name */
  readonly name: string
  /** the data nodes: the initial master, then the replica */
  readonly servers: ReadonlyArray<RedisServer>
  readonly sentinels: ReadonlyArray<SentinelProcess>
  /** `{ host, port }` of every sentinel, for the client */
  readonly sentinelAddresses: ReadonlyArray<{ readonly host: string; readonly port: number }>
  /** the data node the sentinels currently name as master */
  master(): Promise<RedisServer>
  /**
   * Waits until the sentinels name a master other than `old`, that master says `role:master` itself, and returns
   * it.
   */
  waitForFailover(old: RedisServer, timeoutMs?: number): Promise<RedisServer>
  /** stops every process (idempotent) */
  stop(): Promise<void>
}

const MASTER_NAME = "fcmaster"
const POLL_MS = 50
const READY_TIMEOUT_MS = 5_000
const FORBIDDEN_PORTS = new Set([6379, 26379])

/** Starts a master, a replica and three sentinels, and waits until the sentinels are ready to fail over. */
export const startRedisSentinel = async (options?: StartSentinelOptions): Promise<RedisSentinelSetup> => {
  const downAfter = options?.downAfterMs ?? 1_000
  const failoverTimeout = options?.failoverTimeoutMs ?? 5_000
  const servers: Array<RedisServer> = []
  const sentinels: Array<SentinelProcessImpl> = []
  const setup = new RedisSentinelSetupImpl(servers, sentinels)
  try {
    // a replica's first sync would otherwise wait 5 s for more replicas to join a diskless transfer
    const master = await startRedis({ args: ["--repl-diskless-sync-delay", "0"] })
    servers.push(master)
    servers.push(await startRedis({ args: ["--replicaof", HOST, String(master.port)] }))
    const conf = (port: number, dir: string) =>
      [
        `port ${port}`,
        `bind ${HOST}`,
        "protected-mode no",
        "daemonize no",
        'logfile ""',
        `dir ${dir}`,
        `sentinel monitor ${MASTER_NAME} ${HOST} ${master.port} 2`,
        `sentinel down-after-milliseconds ${MASTER_NAME} ${downAfter}`,
        `sentinel failover-timeout ${MASTER_NAME} ${failoverTimeout}`,
        `sentinel parallel-syncs ${MASTER_NAME} 1`,
        ""
      ].join("\n")
    const started = await Promise.allSettled([0, 1, 2].map(() => startSentinelProcess(conf)))
    for (const r of started) if (r.status === "fulfilled") sentinels.push(r.value)
    const failed = started.find((r): r is PromiseRejectedResult => r.status === "rejected")
    if (failed !== undefined) throw failed.reason
    await setup.waitReady(options?.readyTimeoutMs ?? 20_000)
    return setup
  } catch (error) {
    await setup.stop()
    throw error
  }
}

/** Scoped resource for `it.scoped`: started on acquire, stopped on release (also when the test fails). */
export const redisSentinel = (options?: StartSentinelOptions): Effect.Effect<RedisSentinelSetup, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(() => startRedisSentinel(options)),
    (setup) => Effect.promise(() => setup.stop())
  )

class RedisSentinelSetupImpl implements RedisSentinelSetup {
  readonly name = MASTER_NAME
  #stopping: Promise<void> | undefined

  constructor(
    readonly servers: Array<RedisServer>,
    readonly sentinels: Array<SentinelProcessImpl>
  ) {}

  get sentinelAddresses() {
    return this.sentinels.map((s) => ({ host: HOST, port: s.port }))
  }

  async #masterPort(): Promise<number> {
    let lastError: unknown = new Error("no live sentinel")
    for (const s of this.sentinels) {
      if (!s.isRunning || s.isPaused) continue
      try {
        const reply = await s.command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME)
        const port = Number(reply.split("\n")[1])
        if (Number.isInteger(port)) return port
      } catch (error) {
        lastError = error
      }
    }
    throw lastError
  }

  async master(): Promise<RedisServer> {
    const port = await this.#masterPort()
    const server = this.servers.find((s) => s.port === port)
    if (server === undefined) throw new Error(`sentinels name an unknown master on port ${port}`)
    return server
  }

  async waitForFailover(old: RedisServer, timeoutMs = 20_000): Promise<RedisServer> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      try {
        const master = await this.master()
        if (master !== old && (await master.commandWithTimeout(1_000, "ROLE")).startsWith("master")) return master
      } catch {
        // mid-failover: ask again
      }
      if (Date.now() > deadline) throw new Error(`no failover away from port ${old.port} within ${timeoutMs} ms`)
      await sleep(POLL_MS)
    }
  }

  /** every sentinel knows the two others and the replica; the replica's link is up */
  async waitReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs
    let last = ""
    for (;;) {
      try {
        const views = await Promise.all(
          this.sentinels.map(async (s) => fieldsOf(await s.command("SENTINEL", "MASTER", MASTER_NAME)))
        )
        const replication = await this.servers[1]!.commandWithTimeout(1_000, "INFO", "replication")
        const ok =
          /master_link_status:up/.test(replication) &&
          views.every((v) => v["num-slaves"] === "1" && v["num-other-sentinels"] === "2" && v["flags"] === "master")
        if (ok) return
        last = JSON.stringify(views.map((v) => [v["flags"], v["num-slaves"], v["num-other-sentinels"]]))
      } catch (error) {
        last = String(error)
      }
      if (Date.now() > deadline) throw new Error(`sentinels not ready within ${timeoutMs} ms (${last})`)
      await sleep(POLL_MS)
    }
  }

  stop(): Promise<void> {
    this.#stopping ??= Promise.allSettled([
      ...this.sentinels.map((s) => s.stop()),
      ...this.servers.map((s) => s.stop())
    ]).then((results) => {
      const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected")
      if (failed !== undefined) throw failed.reason
    })
    return this.#stopping
  }
}

/** redis-cli prints a flat reply as alternating lines: field, value, field, value… */
const fieldsOf = (reply: string): Record<string, string> => {
  const lines = reply.split("\n").map((l) => l.trim())
  const out: Record<string, string> = {}
  for (let i = 0; i + 1 < lines.length; i += 2) out[lines[i]!] = lines[i + 1]!
  return out
}

// ---------------------------------------------------------------------------------------------------------------------
// sentinel processes
// ---------------------------------------------------------------------------------------------------------------------

const runId = (process.env[RUN_ID_ENV] ?? `pid${process.pid}`).replace(/[^A-Za-z0-9_]/g, "_")

class SentinelProcessImpl implements SentinelProcess {
  #paused = false
  #stopping: Promise<void> | undefined
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined
  output = ""
  readonly exited: Promise<void>

  constructor(
    readonly port: number,
    readonly dir: string,
    readonly child: ChildProcess,
    readonly pid: number
  ) {
    this.exited = new Promise((resolve) =>
      child.once("exit", (code, signal) => {
        this.exit = { code, signal }
        liveSentinels.delete(this)
        resolve()
      })
    )
    const append = (chunk: Buffer) => {
      this.output = (this.output + chunk.toString("utf8")).slice(-32 * 1024)
    }
    child.stdout?.on("data", append)
    child.stderr?.on("data", append)
  }

  get isRunning(): boolean {
    return this.exit === undefined
  }
  get isPaused(): boolean {
    return this.isRunning && this.#paused
  }

  pause(): void {
    if (!this.isRunning) throw new Error(`sentinel on port ${this.port} is not running`)
    this.child.kill("SIGSTOP")
    this.#paused = true
  }

  resume(): void {
    if (this.#paused && this.isRunning) this.child.kill("SIGCONT")
    this.#paused = false
  }

  async kill(): Promise<void> {
    if (this.isRunning) {
      if (this.#paused) this.child.kill("SIGCONT")
      this.child.kill("SIGKILL")
      await this.exited
    }
    this.#paused = false
  }

  stop(): Promise<void> {
    this.#stopping ??= this.kill().finally(() => rm(this.dir, { recursive: true, force: true }))
    return this.#stopping
  }

  command(...args: Array<string>): Promise<string> {
    return cli(this.port, 2_000, ...args)
  }
}

const liveSentinels = new Set<SentinelProcessImpl>()
let exitHandlersInstalled = false

const killAllSync = (): void => {
  for (const s of liveSentinels) {
    try {
      // spawned by us and its exit not observed yet: not reaped, so the PID cannot have been reused
      process.kill(s.pid, "SIGKILL")
    } catch {
      // already gone
    }
    try {
      rmSync(s.dir, { recursive: true, force: true })
    } catch {
      // best effort
    }
  }
  liveSentinels.clear()
}

const installExitHandlers = (): void => {
  if (exitHandlersInstalled) return
  exitHandlersInstalled = true
  onProcessEnd(killAllSync)
}

const startSentinelProcess = async (conf: (port: number, dir: string) => string): Promise<SentinelProcessImpl> => {
  installExitHandlers()
  let lastError: unknown
  for (let attempt = 0; attempt < 5; attempt++) {
    const dir = await mkdtemp(join(tmpdir(), tempDirMarker(runId)))
    const port = await freePort(FORBIDDEN_PORTS)
    const file = join(dir, "sentinel.conf")
    await writeFile(file, conf(port, dir))
    const child = spawn("redis-server", [file, "--sentinel"], { cwd: dir, stdio: ["ignore", "pipe", "pipe"] })
    if (child.pid === undefined) {
      await rm(dir, { recursive: true, force: true })
      throw new Error("cannot spawn redis-server --sentinel")
    }
    const sentinel = new SentinelProcessImpl(port, dir, child, child.pid)
    liveSentinels.add(sentinel)
    const deadline = Date.now() + READY_TIMEOUT_MS
    while (sentinel.isRunning && Date.now() < deadline) {
      const pid = await cli(port, 500, "INFO", "server")
        .then((info) => Number(/process_id:(\d+)/.exec(info)?.[1]))
        .catch(() => undefined)
      if (pid === sentinel.pid) return sentinel
      await sleep(25)
    }
    lastError = new Error(`sentinel on ${HOST}:${port} did not start. Output:\n${sentinel.output}`)
    await sentinel.stop()
    if (!/address already in use/i.test(sentinel.output)) break
  }
  throw lastError
}

const cli = (port: number, timeoutMs: number, ...args: Array<string>): Promise<string> =>
  new Promise((resolve, reject) => {
    execFile(
      "redis-cli",
      ["-e", "-h", HOST, "-p", String(port), ...args],
      { encoding: "utf8", timeout: timeoutMs, killSignal: "SIGKILL" },
      (error, stdout) => (error === null ? resolve(stdout.trim()) : reject(error))
    )
  })

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))
