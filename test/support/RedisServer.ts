/**
 * Test harness that starts real, throw-away `redis-server` processes on free loopback ports.
 *
 * Safety rules (there is a machine-owned redis on 6379 that must never be touched):
 * - servers are only ever started on 127.0.0.1, never on port 6379;
 * - readiness is only accepted once the server that answers reports the PID we spawned;
 * - only PIDs spawned by this module are ever signalled.
 *
 * Every server is registered in a module-level registry; on `process.exit` (and on SIGINT/SIGTERM/SIGHUP, after
 * which the signal is re-raised) all registered servers are SIGKILLed synchronously so that no orphan survives a
 * failing or crashing test file. `test/support/globalSetup.ts` double-checks this after the whole run.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process"
import { rmSync } from "node:fs"
import { mkdtemp, rm } from "node:fs/promises"
import * as net from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import type { Scope } from "effect"

export const HOST = "127.0.0.1"

/** Env var set by globalSetup so that every server started during one vitest run can be attributed to it. */
export const RUN_ID_ENV = "REDIS_HARNESS_RUN_ID"

/** Temp dirs (which are also the servers' cwd, see `/proc/PID/cwd`) are named `redis-harness-<runId>-XXXXXX`. */
export const tempDirMarker = (runId: string): string => `redis-harness-${runId}-`

const runId = (process.env[RUN_ID_ENV] ?? `pid${process.pid}`).replace(/[^A-Za-z0-9_]/g, "_")

const MACHINE_REDIS_PORT = 6379
const READY_TIMEOUT_MS = 5_000
/** How long to keep retrying when a fixed port (explicit `port`, or `restart()`) is still in use. */
const SAME_PORT_RETRY_MS = 3_000
const FREE_PORT_ATTEMPTS = 5
const PROBE_TIMEOUT_MS = 500
const DEFAULT_COMMAND_TIMEOUT_MS = 10_000
const OUTPUT_LIMIT = 64 * 1024
const READY_LINE = "Ready to accept connections"

export interface StartRedisOptions {
  /** Extra `redis-server` arguments appended after the defaults (later arguments win), e.g. `["--maxmemory", "1mb"]`. */
  readonly args?: ReadonlyArray<string>
  /** Fixed port to use instead of a free one (never 6379). */
  readonly port?: number
}

export interface RedisServer {
  readonly host: "127.0.0.1"
  readonly port: number
  /** `redis://127.0.0.1:<port>` */
  readonly url: string
  /** PID of the current process (changes on `restart()`). */
  readonly pid: number
  /** Private temp dir used as `--dir` (replaced by a fresh one on `restart()`, removed by `stop()`). */
  readonly dir: string
  /** Captured stdout/stderr of the current process (last 64 KiB). */
  readonly output: string
  readonly isRunning: boolean
  readonly isPaused: boolean
  /** SIGKILL and wait until the process has exited. No-op if not running. */
  kill(): Promise<void>
  /** SIGSTOP: a black hole, TCP connects succeed and stay open but nothing answers. */
  pause(): void
  /** SIGCONT. No-op if not paused. */
  resume(): void
  /** Start again on the same port with an empty data set (kills first if still running, even if paused). */
  restart(): Promise<void>
  /** Idempotent full cleanup: resume if paused, SIGKILL, wait for exit, remove the temp dir. */
  stop(): Promise<void>
  /**
   * Runs `redis-cli -e -h 127.0.0.1 -p <port> ...args` (timeout 10 s) and returns trimmed stdout.
   * Rejects on error replies (`-e`), on timeout, and if the server is not running.
   */
  command(...args: Array<string>): Promise<string>
  /** Like `command` with an explicit timeout in milliseconds (redis-cli is killed when it expires). */
  commandWithTimeout(timeoutMs: number, ...args: Array<string>): Promise<string>
}

/** Starts a fresh `redis-server` and waits until it answers (deadline ~5 s). */
export const startRedis = async (options?: StartRedisOptions): Promise<RedisServer> => {
  const fixedPort = options?.port
  if (fixedPort !== undefined) assertUsablePort(fixedPort)
  const extraArgs = [...(options?.args ?? [])]
  installExitHandlers()
  let dir = await makeTempDir()
  try {
    let failure: Error | undefined
    for (let attempt = 0; attempt < FREE_PORT_ATTEMPTS; attempt++) {
      const port = fixedPort ?? (await freePort())
      const result = await launch(port, dir, extraArgs, fixedPort === undefined ? 0 : SAME_PORT_RETRY_MS)
      if (result._tag === "Ready") {
        const server = new RedisServerImpl(port, dir, extraArgs, result.proc)
        registry.add(server)
        return server
      }
      failure = result.error
      if (fixedPort !== undefined || !result.portInUse) break
      // somebody grabbed the free port between our probe and redis' bind: try another one with a clean dir
      await rm(dir, { recursive: true, force: true })
      dir = await makeTempDir()
    }
    throw failure ?? new Error("redis-server could not be started")
  } catch (error) {
    await rm(dir, { recursive: true, force: true })
    throw error
  }
}

/** Scoped resource for `it.scoped`: started on acquire, `stop()`ped on release. */
export const redisServer = (options?: StartRedisOptions): Effect.Effect<RedisServer, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(() => startRedis(options)),
    (server) => Effect.promise(() => server.stop())
  )

// ---------------------------------------------------------------------------------------------------------------------
// server object
// ---------------------------------------------------------------------------------------------------------------------

class RedisServerImpl implements RedisServer {
  readonly host = HOST
  readonly url: string
  #dir: string
  #proc: Proc
  #paused = false
  #stopped = false
  #stopping: Promise<void> | undefined
  #queue: Promise<unknown> = Promise.resolve()

  constructor(
    readonly port: number,
    dir: string,
    private readonly extraArgs: ReadonlyArray<string>,
    proc: Proc
  ) {
    this.url = `redis://${HOST}:${port}`
    this.#dir = dir
    this.#proc = proc
  }

  get pid(): number {
    return this.#proc.pid
  }
  get dir(): string {
    return this.#dir
  }
  get output(): string {
    return this.#proc.output
  }
  get isRunning(): boolean {
    return this.#proc.exit === undefined
  }
  get isPaused(): boolean {
    return this.isRunning && this.#paused
  }

  pause(): void {
    if (!this.isRunning) throw new Error(`redis-server on port ${this.port} is not running, cannot pause it`)
    this.#proc.child.kill("SIGSTOP")
    this.#paused = true
  }

  resume(): void {
    if (this.#paused && this.isRunning) this.#proc.child.kill("SIGCONT")
    this.#paused = false
  }

  kill(): Promise<void> {
    return this.#serial(() => this.#kill())
  }

  restart(): Promise<void> {
    return this.#serial(async () => {
      if (this.#stopped) throw new Error(`redis-server on port ${this.port} was stopped, cannot restart it`)
      await this.#kill()
      // fresh dir so that the data set is guaranteed to come back empty
      await rm(this.#dir, { recursive: true, force: true })
      this.#dir = await makeTempDir()
      const result = await launch(this.port, this.#dir, this.extraArgs, SAME_PORT_RETRY_MS)
      if (result._tag === "Failed") throw result.error
      this.#proc = result.proc
    })
  }

  stop(): Promise<void> {
    this.#stopped = true
    this.#stopping ??= this.#serial(async () => {
      try {
        await this.#kill()
        await rm(this.#dir, { recursive: true, force: true })
      } finally {
        registry.delete(this)
      }
    })
    return this.#stopping
  }

  command(...args: Array<string>): Promise<string> {
    return this.commandWithTimeout(DEFAULT_COMMAND_TIMEOUT_MS, ...args)
  }

  commandWithTimeout(timeoutMs: number, ...args: Array<string>): Promise<string> {
    if (!this.isRunning) {
      return Promise.reject(new Error(`redis-server on port ${this.port} is not running (redis-cli ${args.join(" ")})`))
    }
    const cliArgs = ["-e", "-h", HOST, "-p", String(this.port), ...args]
    return new Promise((resolve, reject) => {
      execFile(
        "redis-cli",
        cliArgs,
        { encoding: "utf8", timeout: timeoutMs, killSignal: "SIGKILL", maxBuffer: 64 * 1024 * 1024 },
        (error, stdout, stderr) => {
          if (error === null) return resolve(stdout.trim())
          const what = `redis-cli ${cliArgs.join(" ")}`
          const detail = `stdout: ${JSON.stringify(stdout.trim())}, stderr: ${JSON.stringify(stderr.trim())}`
          reject(
            error.killed
              ? new Error(`${what} timed out after ${timeoutMs} ms (${detail})`, { cause: error })
              : new Error(`${what} failed with exit code ${String(error.code)} (${detail})`, { cause: error })
          )
        }
      )
    })
  }

  /** Last-resort synchronous cleanup used from the process exit handler (after `killAllSync` killed the process). */
  removeDirSync(): void {
    try {
      rmSync(this.#dir, { recursive: true, force: true })
    } catch {
      // best effort
    }
  }

  async #kill(): Promise<void> {
    const proc = this.#proc
    if (proc.exit === undefined) {
      if (this.#paused) proc.child.kill("SIGCONT")
      proc.child.kill("SIGKILL")
      await proc.exited
    }
    this.#paused = false
  }

  #serial<A>(f: () => Promise<A>): Promise<A> {
    const run = this.#queue.then(f, f)
    this.#queue = run.catch(() => undefined)
    return run
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// process management
// ---------------------------------------------------------------------------------------------------------------------

interface Proc {
  readonly child: ChildProcess
  readonly pid: number
  /** Resolves once the process has exited (the "exit" event, i.e. after it was reaped). */
  readonly exited: Promise<void>
  /** Resolves once stdout/stderr are closed too (bounded wait, used for diagnostics). */
  readonly closed: Promise<void>
  exit: { readonly code: number | null; readonly signal: NodeJS.Signals | null } | undefined
  output: string
  sawReadyLine: boolean
}

type LaunchResult =
  | { readonly _tag: "Ready"; readonly proc: Proc }
  | { readonly _tag: "Failed"; readonly error: Error; readonly portInUse: boolean }

/**
 * Spawns redis-server on `port` and waits until it answers. If it exits because the port is in use, retries on the
 * same port for `samePortRetryMs` (0 = report immediately so that the caller can pick another port).
 */
const launch = async (
  port: number,
  dir: string,
  extraArgs: ReadonlyArray<string>,
  samePortRetryMs: number
): Promise<LaunchResult> => {
  const retryUntil = Date.now() + samePortRetryMs
  for (;;) {
    const proc = await spawnRedis(port, dir, extraArgs)
    const outcome = await waitReady(proc, port)
    if (outcome === "ready") return { _tag: "Ready", proc }
    if (outcome === "timeout") {
      proc.child.kill("SIGKILL")
      await proc.exited
    }
    await Promise.race([proc.closed, sleep(200)])
    const portInUse = /address already in use/i.test(proc.output)
    if (portInUse && Date.now() < retryUntil) {
      await sleep(100)
      continue
    }
    const reason =
      outcome === "timeout"
        ? `did not answer within ${READY_TIMEOUT_MS} ms`
        : `exited (code ${proc.exit?.code ?? "none"}, signal ${proc.exit?.signal ?? "none"})`
    return {
      _tag: "Failed",
      portInUse,
      error: new Error(`redis-server on ${HOST}:${port} (pid ${proc.pid}) ${reason}. Output:\n${proc.output}`)
    }
  }
}

const spawnRedis = (port: number, dir: string, extraArgs: ReadonlyArray<string>): Promise<Proc> => {
  const args = [
    "--port",
    String(port),
    "--bind",
    HOST,
    "--save",
    "",
    "--appendonly",
    "no",
    "--dir",
    dir,
    "--daemonize",
    "no",
    "--protected-mode",
    "no",
    "--logfile",
    "",
    // tests use DEBUG SLEEP etc.; disabled by default since redis 7
    "--enable-debug-command",
    "yes",
    ...extraArgs
  ]
  return new Promise((resolve, reject) => {
    const child = spawn("redis-server", args, { stdio: ["ignore", "pipe", "pipe"] })
    const pid = child.pid
    if (pid === undefined) {
      child.once("error", (error) => reject(new Error(`cannot spawn redis-server: ${error.message}`, { cause: error })))
      return
    }
    let onExit!: () => void
    let onClose!: () => void
    const exited = new Promise<void>((r) => (onExit = r))
    const closed = new Promise<void>((r) => (onClose = r))
    const proc: Proc = { child, pid, exited, closed, exit: undefined, output: "", sawReadyLine: false }
    const append = (chunk: Buffer): void => {
      const text = proc.output + chunk.toString("utf8")
      if (!proc.sawReadyLine && text.includes(READY_LINE)) proc.sawReadyLine = true
      proc.output = text.length > OUTPUT_LIMIT ? text.slice(-OUTPUT_LIMIT) : text
    }
    child.stdout?.on("data", append)
    child.stderr?.on("data", append)
    child.on("error", (error) => {
      proc.output += `\n[harness] child process error: ${error.message}\n`
    })
    liveProcs.add(proc)
    child.once("exit", (code, signal) => {
      liveProcs.delete(proc)
      proc.exit = { code, signal }
      onExit()
    })
    child.once("close", () => onClose())
    resolve(proc)
  })
}

const waitReady = async (proc: Proc, port: number): Promise<"ready" | "exited" | "timeout"> => {
  const start = Date.now()
  const deadline = start + READY_TIMEOUT_MS
  while (Date.now() < deadline) {
    if (proc.exit !== undefined) return "exited"
    // Only probe once redis has bound the port (ready line), so that we never talk to a foreign server. Fall back to
    // probing after a second in case the user's args changed logging; the PID check below still guards identity.
    if (proc.sawReadyLine || Date.now() - start > 1_000) {
      const answeringPid = await probeServerPid(port).catch(() => undefined)
      if (answeringPid === proc.pid) return "ready"
    }
    await Promise.race([proc.exited, sleep(proc.sawReadyLine ? 10 : 25)])
  }
  return proc.exit === undefined ? "timeout" : "exited"
}

/** Raw-TCP `INFO server` (proves PING-ability) returning the answering server's `process_id`. No handle is kept. */
const probeServerPid = (port: number): Promise<number> =>
  new Promise((resolve, reject) => {
    const socket = net.connect({ host: HOST, port })
    let buffer = ""
    const done = (error: Error | undefined, pid?: number): void => {
      clearTimeout(timer)
      socket.destroy()
      if (error !== undefined || pid === undefined) reject(error ?? new Error("no process_id in INFO"))
      else resolve(pid)
    }
    const timer = setTimeout(() => done(new Error("probe timed out")), PROBE_TIMEOUT_MS)
    socket.setEncoding("utf8")
    socket.once("connect", () => socket.write("INFO server\r\n"))
    socket.on("data", (chunk: string) => {
      buffer += chunk
      if (buffer.startsWith("-")) return done(new Error(`probe error reply: ${buffer.trim()}`))
      const header = /^\$(\d+)\r\n/.exec(buffer)
      if (header === null) return
      const length = Number(header[1])
      // RESP lengths are in bytes; all of INFO server is ASCII
      if (buffer.length < header[0].length + length) return
      const match = /^process_id:(\d+)\r?$/m.exec(buffer)
      done(undefined, match === null ? undefined : Number(match[1]))
    })
    socket.once("error", (error) => done(error))
    socket.once("close", () => done(new Error("connection closed")))
  })

/**
 * A port that is free on the loopback interface right now and not one of `forbidden` (by default the machine's own
 * Redis port).
 */
export const freePort = async (forbidden: ReadonlySet<number> = new Set([MACHINE_REDIS_PORT])): Promise<number> => {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = net.createServer()
      server.unref()
      server.once("error", reject)
      server.listen(0, HOST, () => {
        const address = server.address()
        server.close(() =>
          typeof address === "object" && address !== null ? resolve(address.port) : reject(new Error("no port"))
        )
      })
    })
    if (!forbidden.has(port)) return port
  }
}

const assertUsablePort = (port: number): void => {
  if (!Number.isInteger(port) || port <= 0 || port > 65_535) throw new Error(`invalid port ${port}`)
  if (port === MACHINE_REDIS_PORT) throw new Error("port 6379 belongs to the machine's redis-server; never use it")
}

const makeTempDir = (): Promise<string> => mkdtemp(join(tmpdir(), tempDirMarker(runId)))

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

// ---------------------------------------------------------------------------------------------------------------------
// last-resort cleanup
// ---------------------------------------------------------------------------------------------------------------------

/** Every spawned redis-server that has not exited yet (including ones still starting up). */
const liveProcs = new Set<Proc>()
/** Servers handed out and not yet stopped (for their temp dirs). */
const registry = new Set<RedisServerImpl>()
let exitHandlersInstalled = false

const killAllSync = (): void => {
  for (const proc of liveProcs) {
    try {
      // a process we spawned whose exit we have not observed yet: not reaped, so the PID cannot have been reused
      process.kill(proc.pid, "SIGKILL")
    } catch {
      // already gone
    }
  }
  liveProcs.clear()
  for (const server of registry) server.removeDirSync()
  registry.clear()
}

/** cleanups that must run however the process ends (each kills what its harness spawned) */
const exitCleanups: Array<() => void> = []

/**
 * Runs `cleanup` (synchronous) when the process exits, and on SIGINT/SIGTERM/SIGHUP, which would otherwise end the
 * process without an "exit" event: after the cleanups the default behaviour is restored by re-raising the signal,
 * unless somebody else handles it.
 */
export const onProcessEnd = (cleanup: () => void): void => {
  exitCleanups.push(cleanup)
  if (exitCleanups.length > 1) return
  const runAll = (): void => {
    for (const c of exitCleanups) c()
  }
  process.on("exit", runAll)
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    const onSignal = (): void => {
      runAll()
      process.removeListener(signal, onSignal)
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal)
    }
    process.on(signal, onSignal)
  }
}

const installExitHandlers = (): void => {
  if (exitHandlersInstalled) return
  exitHandlersInstalled = true
  onProcessEnd(killAllSync)
}
