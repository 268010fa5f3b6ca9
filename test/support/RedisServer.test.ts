import { execFile } from "node:child_process"
import { existsSync, readFileSync } from "node:fs"
import * as net from "node:net"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { redisServer, startRedis, type RedisServer } from "./RedisServer.js"

const run = <A>(f: () => Promise<A>): Effect.Effect<A> => Effect.promise(f)

/** Runs `f` and succeeds with the error it rejected with (dies if it resolves). */
const failureOf = (f: () => Promise<unknown>): Effect.Effect<Error> =>
  Effect.tryPromise({ try: f, catch: (error) => error as Error }).pipe(
    Effect.flip,
    Effect.orDieWith(() => new Error("expected a failure"))
  )

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    expect((error as NodeJS.ErrnoException).code).toBe("ESRCH")
    return false
  }
}

/** For grandchildren (reparented to init when their parent dies): dead once gone or a zombie not yet reaped. */
const isDeadOrZombie = (pid: number): boolean => {
  if (!isAlive(pid)) return true
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    return stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z")
  } catch {
    return true
  }
}

/** Opens a raw TCP connection, sends PING and reports whether the connection opened and whether anything answered. */
const rawPing = (server: RedisServer, waitMs: number): Promise<{ connected: boolean; answer: string }> =>
  new Promise((resolve) => {
    const socket = net.connect({ host: server.host, port: server.port })
    let connected = false
    let answer = ""
    const finish = (): void => {
      clearTimeout(timer)
      socket.destroy()
      resolve({ connected, answer })
    }
    const timer = setTimeout(finish, waitMs)
    socket.setEncoding("utf8")
    socket.on("connect", () => {
      connected = true
      socket.write("PING\r\n")
    })
    socket.on("data", (chunk: string) => {
      answer += chunk
      if (answer.includes("\r\n")) finish()
    })
    socket.on("error", finish)
  })

describe("RedisServer harness", () => {
  it.scoped("starts a private server on a free loopback port that answers", () =>
    Effect.gen(function* () {
      const server = yield* redisServer()
      expect(server.host).toBe("127.0.0.1")
      expect(server.port).not.toBe(6379)
      expect(server.url).toBe(`redis://127.0.0.1:${server.port}`)
      expect(server.isRunning).toBe(true)
      expect(server.isPaused).toBe(false)
      expect(yield* run(() => server.command("PING"))).toBe("PONG")
      expect(yield* run(() => server.command("INFO", "server"))).toContain(`process_id:${server.pid}`)
      expect(yield* run(() => server.command("SET", "k", "v"))).toBe("OK")
      expect(yield* run(() => server.command("GET", "k"))).toBe("v")
      expect(yield* run(() => server.command("CONFIG", "GET", "save"))).toBe("save")
      expect(yield* run(() => server.command("DEBUG", "SLEEP", "0"))).toBe("OK")
    })
  )

  it.scoped("passes extra args to redis-server", () =>
    Effect.gen(function* () {
      const server = yield* redisServer({ args: ["--maxmemory", "2mb", "--maxmemory-policy", "noeviction"] })
      expect(yield* run(() => server.command("CONFIG", "GET", "maxmemory"))).toBe(`maxmemory\n${2 * 1024 * 1024}`)
    })
  )

  it.scoped("rejects error replies instead of returning them as text", () =>
    Effect.gen(function* () {
      const server = yield* redisServer()
      const error = yield* failureOf(() => server.command("NO-SUCH-COMMAND"))
      expect(error.message).toContain("ERR unknown command")
    })
  )

  it.scoped("pause turns the server into a black hole, resume brings it back", () =>
    Effect.gen(function* () {
      const server = yield* redisServer()
      server.pause()
      expect(server.isPaused).toBe(true)
      expect(server.isRunning).toBe(true)

      const timeout = yield* failureOf(() => server.commandWithTimeout(300, "PING"))
      expect(timeout.message).toContain("timed out after 300 ms")
      const raw = yield* run(() => rawPing(server, 300))
      expect(raw).toEqual({ connected: true, answer: "" })

      server.resume()
      expect(server.isPaused).toBe(false)
      expect(yield* run(() => server.commandWithTimeout(2_000, "PING"))).toBe("PONG")
    })
  )

  it.scoped("kill + restart keeps the port and comes back empty", () =>
    Effect.gen(function* () {
      const server = yield* redisServer()
      const { port, pid: firstPid, dir: firstDir } = server
      expect(yield* run(() => server.command("SET", "k", "v"))).toBe("OK")

      yield* run(() => server.kill())
      expect(server.isRunning).toBe(false)
      expect(isAlive(firstPid)).toBe(false)
      expect((yield* run(() => rawPing(server, 300))).connected).toBe(false)
      expect((yield* failureOf(() => server.command("PING"))).message).toContain("not running")

      yield* run(() => server.restart())
      expect(server.isRunning).toBe(true)
      expect(server.port).toBe(port)
      expect(server.pid).not.toBe(firstPid)
      expect(server.dir).not.toBe(firstDir)
      expect(existsSync(firstDir)).toBe(false)
      expect(yield* run(() => server.command("DBSIZE"))).toBe("0")
      expect(yield* run(() => server.command("EXISTS", "k"))).toBe("0")
    })
  )

  it.scoped("restart kills a running or paused server first", () =>
    Effect.gen(function* () {
      const server = yield* redisServer()
      const { port } = server
      yield* run(() => server.command("SET", "k", "v"))
      const runningPid = server.pid
      yield* run(() => server.restart())
      expect(isAlive(runningPid)).toBe(false)
      expect(yield* run(() => server.command("DBSIZE"))).toBe("0")

      yield* run(() => server.command("SET", "k", "v"))
      server.pause()
      const pausedPid = server.pid
      yield* run(() => server.restart())
      expect(isAlive(pausedPid)).toBe(false)
      expect(server.isPaused).toBe(false)
      expect(server.port).toBe(port)
      expect(yield* run(() => server.command("DBSIZE"))).toBe("0")
    })
  )

  it("stop leaves no process and no temp dir, and is idempotent", async () => {
    const server = await startRedis()
    const { pid, dir } = server
    expect(isAlive(pid)).toBe(true)
    expect(existsSync(dir)).toBe(true)
    server.pause()
    await Promise.all([server.stop(), server.stop()])
    expect(isAlive(pid)).toBe(false)
    expect(existsSync(dir)).toBe(false)
    expect(server.isRunning).toBe(false)
    expect(server.isPaused).toBe(false)
    await server.stop()
    await expect(server.restart()).rejects.toThrow("stopped")
  })

  it.effect("the scoped resource stops the server when the scope closes", () =>
    Effect.gen(function* () {
      const server = yield* Effect.scoped(redisServer())
      expect(server.isRunning).toBe(false)
      expect(isAlive(server.pid)).toBe(false)
      expect(existsSync(server.dir)).toBe(false)
    })
  )

  it("refuses port 6379 and reports the output when the requested port is taken", async () => {
    await expect(startRedis({ port: 6379 })).rejects.toThrow("6379")

    const blocker = net.createServer()
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve))
    try {
      const address = blocker.address()
      if (typeof address !== "object" || address === null) throw new Error("no address")
      await expect(startRedis({ port: address.port })).rejects.toThrow(/Address already in use/)
    } finally {
      await new Promise((resolve) => blocker.close(resolve))
    }
  })

  describe("last-resort cleanup in a process that does not stop its servers", () => {
    const harness = fileURLToPath(new URL("./RedisServer.ts", import.meta.url))
    const script = (ending: string): string =>
      `const { startRedis } = await import(${JSON.stringify(harness)})
       const servers = [await startRedis(), await startRedis()]
       servers[1].pause()
       console.log(JSON.stringify(servers.map((s) => s.pid)))
       ${ending}`

    const runChild = (ending: string, onStdout?: (pids: Array<number>, kill: () => void) => void) =>
      new Promise<{ pids: Array<number>; code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
        const child = execFile(
          process.execPath,
          ["--import", "tsx", "--input-type=module", "-e", script(ending)],
          { cwd: fileURLToPath(new URL("../..", import.meta.url)), timeout: 20_000, encoding: "utf8" },
          () => undefined
        )
        let pids: Array<number> = []
        let out = ""
        let err = ""
        child.stderr?.on("data", (chunk: string) => (err += chunk))
        child.stdout?.on("data", (chunk: string) => {
          out += chunk
          const line = out.split("\n").find((l) => l.startsWith("["))
          if (line !== undefined && pids.length === 0) {
            pids = JSON.parse(line) as Array<number>
            onStdout?.(pids, () => child.kill("SIGTERM"))
          }
        })
        child.on("error", reject)
        child.on("exit", (code, signal) =>
          pids.length === 2 ? resolve({ pids, code, signal }) : reject(new Error(`child failed (${code}): ${err}`))
        )
      })

    it("kills the servers when the process crashes", async () => {
      const { pids, code } = await runChild(`throw new Error("boom")`)
      expect(code).toBe(1)
      for (const pid of pids) await expect.poll(() => isDeadOrZombie(pid), { timeout: 2_000 }).toBe(true)
    })

    it("kills the servers when the process is terminated by SIGTERM", async () => {
      const { pids, signal } = await runChild(`setInterval(() => {}, 1000)`, (_, kill) => kill())
      expect(signal).toBe("SIGTERM")
      for (const pid of pids) await expect.poll(() => isDeadOrZombie(pid), { timeout: 2_000 }).toBe(true)
    })
  })
})
