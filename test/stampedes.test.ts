/**
 * getOrCompute under pressure (docs/stampedes.md): one computation across processes with `lock`, a dead lock holder
 * taken over, stale values only when asked for and marked, and fail-closed behaviour when Redis is unavailable. Real
 * redis-server processes; the cross-process cases run real Node child processes (test/support/stampedeNode.ts).
 */
import { type ChildProcess, spawn } from "node:child_process"
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Either, Exit, Fiber, Layer, Metric, Option, Schema, TestClock } from "effect"
import { explicitDegraded, Keyspace, LocalOnly, Observability } from "effect-failclosed"
import { cacheOnFreshRedis, clientLayer, type LogEntry, withLogs } from "./support/modeTests.js"
import { cli, expectFailsClosed, FAIL_FAST_COMMAND_TIMEOUT_MS, on, strictNode } from "./support/nodes.js"
import { redisServer } from "./support/RedisServer.js"
import type { Args, Report } from "./support/stampedeNode.js"

const Values = Keyspace.make({ name: "stampede", key: Schema.String, value: Schema.Number, timeToLive: "1 minute" })

/** a stampedeNode child process; `go` starts its burst, `report` is its JSON line */
const child = (args: Args) =>
  Effect.acquireRelease(
    Effect.async<{ readonly process: ChildProcess; readonly report: Promise<Report> }, Error>((resume) => {
      const proc = spawn(
        process.execPath,
        ["--import", "tsx", "--conditions=source", "test/support/stampedeNode.ts", JSON.stringify(args)],
        { stdio: ["pipe", "pipe", "inherit"] }
      )
      let out = ""
      let resolveReport: (r: Report) => void = () => {}
      let rejectReport: (e: Error) => void = () => {}
      const report = new Promise<Report>((resolve, reject) => {
        resolveReport = resolve
        rejectReport = reject
      })
      report.catch(() => {})
      let ready = false
      proc.stdout!.on("data", (chunk: Buffer) => {
        out += chunk.toString("utf8")
        const lines = out.split("\n")
        if (!ready && lines.includes("ready")) {
          ready = true
          resume(Effect.succeed({ process: proc, report }))
        }
        const last = lines.find((l) => l.startsWith("{"))
        if (last !== undefined) resolveReport(JSON.parse(last) as Report)
      })
      proc.on("exit", (code, signal) => {
        const error = new Error(`stampede node exited (${code ?? signal}) before it was ready`)
        if (!ready) resume(Effect.fail(error))
        rejectReport(error)
      })
    }),
    ({ process: proc }) => Effect.sync(() => proc.exitCode === null && proc.kill("SIGKILL"))
  )

const go = (proc: ChildProcess) => Effect.sync(() => proc.stdin!.write("go\n"))
const reportOf = (r: { readonly report: Promise<Report> }) => Effect.promise(() => r.report)
const counterOf = (redis: { command: (...args: Array<string>) => Promise<string> }, key: string) =>
  Effect.map(
    Effect.promise(() => redis.command("GET", key)),
    (v) => (v === "" ? 0 : Number(v))
  )

/** two stampedeNode processes × 50 fibers on one fresh Redis, started together: what each returned, and the runs */
const twoProcesses = (lock: boolean) =>
  Effect.gen(function* () {
    const redis = yield* redisServer()
    const args = { url: redis.url, fibers: 50, computeMillis: 300, lock, lockTimeoutMillis: 5_000, counter: "computes" }
    const [a, b] = yield* Effect.all([child(args), child(args)], { concurrency: 2 })
    yield* go(a.process)
    yield* go(b.process)
    const [ra, rb] = yield* Effect.all([reportOf(a), reportOf(b)])
    return { a: ra.values, b: rb.values, computes: yield* counterOf(redis, "computes") }
  })

describe("getOrCompute lock: one computation across processes", () => {
  it.scopedLive(
    "two processes × 50 fibers on one Redis and a cold key: compute runs exactly once with lock",
    () =>
      Effect.gen(function* () {
        const { a, b, computes } = yield* twoProcesses(true)
        expect(computes).toBe(1)
        expect([...a, ...b]).toEqual(Array.from({ length: 100 }, () => 1))
      }),
    60_000
  )

  it.scopedLive(
    "without lock: one computation per process (per-process single flight), so at most two for two processes",
    () =>
      Effect.gen(function* () {
        const { a, b, computes } = yield* twoProcesses(false)
        expect(computes).toBeGreaterThanOrEqual(1)
        expect(computes).toBeLessThanOrEqual(2)
        // each process's 50 callers share its one computation
        expect(new Set(a).size).toBe(1)
        expect(new Set(b).size).toBe(1)
      }),
    60_000
  )

  it.scopedLive(
    "the lock holder is killed mid-compute (SIGKILL): another node computes once the lock expires, no waiter waits past lockTimeout",
    () =>
      Effect.gen(function* () {
        const redis = yield* redisServer()
        const lockTimeoutMillis = 1_500
        const holder = yield* child({
          url: redis.url,
          fibers: 1,
          computeMillis: 60_000,
          lock: true,
          lockTimeoutMillis,
          counter: "computes"
        })
        yield* go(holder.process)
        // the holder has taken the lock and started computing
        while ((yield* counterOf(redis, "computes")) < 1) yield* Effect.sleep("10 millis")
        const takenAt = performance.now()
        holder.process.kill("SIGKILL")
        const node = yield* strictNode(redis.url)
        const compute = Effect.promise(() => redis.command("INCR", "computes")).pipe(
          Effect.map(Number),
          Effect.tap(() => Effect.sleep("100 millis"))
        )
        const started = performance.now()
        const results = yield* on(node)(
          Effect.forEach(
            Array.from({ length: 50 }),
            () => Values.getOrCompute("cold", compute, { lock: true, lockTimeout: Duration.millis(lockTimeoutMillis) }),
            { concurrency: "unbounded" }
          )
        )
        const waited = performance.now() - started
        expect(results.map((r) => r.value)).toEqual(Array.from({ length: 50 }, () => 2))
        expect(yield* counterOf(redis, "computes")).toBe(2)
        // the lock expired at most lockTimeout after it was taken; then one poll (≤ 100 ms), the compute (100 ms)
        expect(performance.now() - takenAt).toBeGreaterThan(lockTimeoutMillis - 300)
        expect(waited).toBeLessThan(lockTimeoutMillis + 100 + 100 + 400)
      }),
    60_000
  )
})

/** a keyspace whose entries go stale fast */
const Short = Keyspace.make({ name: "short", key: Schema.String, value: Schema.Number, timeToLive: "300 millis" })

const counting = (redis: { command: (...args: Array<string>) => Promise<string> }, computeMillis: number) =>
  Effect.promise(() => redis.command("INCR", "computes")).pipe(
    Effect.map(Number),
    Effect.tap(() => Effect.sleep(Duration.millis(computeMillis)))
  )

const warnings = (entries: ReadonlyArray<LogEntry>) =>
  entries.filter((e) => e.level === "WARN").map((e) => String((e.message as ReadonlyArray<unknown>)[0]))

describe("getOrCompute staleWhileRevalidate", () => {
  it.scopedLive(
    "after the time to live, 100 concurrent gets on two nodes return the old value marked stale at once; compute runs once; the next get is fresh",
    () =>
      Effect.gen(function* () {
        const redis = yield* redisServer()
        const [n1, n2] = [yield* strictNode(redis.url), yield* strictNode(redis.url)]
        const options = { lock: true, staleWhileRevalidate: "10 seconds" } as const
        // the refresh's computation waits for this gate, opened only once every stale answer has arrived: no caller
        // can have waited for it, however loaded the machine
        const gate = yield* Effect.makeLatch(false)
        const compute = Effect.zipLeft(counting(redis, 0), gate.await)
        const first = yield* on(n1)(Short.getOrCompute("k", counting(redis, 0), options))
        expect(first).toMatchObject({ value: 1, stale: false })
        // both nodes connected and warm
        yield* on(n2)(Short.get("warm-up"))
        yield* Effect.sleep("400 millis")
        yield* cli(redis, "CONFIG", "RESETSTAT")
        const tagged = <T extends Metric.Metric.Counter<number>>(m: T) =>
          m.pipe(Metric.tagged("mode", "StrictDistributed"), Metric.tagged("keyspace", "short"))
        const staleServed = tagged(Observability.staleServed).pipe(Metric.tagged("reason", "revalidate"))
        const servedBefore = (yield* Metric.value(staleServed)).count
        const computesBefore = (yield* Metric.value(tagged(Observability.computes))).count
        const results = yield* Effect.all(
          Array.from({ length: 100 }, (_, i) => on(i % 2 === 0 ? n1 : n2)(Short.getOrCompute("k", compute, options))),
          { concurrency: "unbounded" }
        )
        for (const r of results) {
          expect(r).toMatchObject({ value: 1, backend: "redis", degraded: false, stale: true })
          expect(Duration.toMillis(r.age!)).toBeGreaterThanOrEqual(300)
        }
        // each served with one GET (the refresh adds one more, and a node that does not get the lock none)
        const gets = /cmdstat_get:calls=(\d+)/.exec(yield* cli(redis, "INFO", "commandstats"))
        expect(Number(gets![1])).toBeLessThanOrEqual(102)
        expect((yield* Metric.value(staleServed)).count - servedBefore).toBe(100)
        yield* gate.open
        // the refresh stores a fresh value (a plain get sees it as soon as it is fresh)
        let next = yield* on(n2)(Short.getOrCompute("k", Effect.die("not called"), options))
        while (next.stale) {
          yield* Effect.sleep("20 millis")
          next = yield* on(n2)(Short.getOrCompute("k", Effect.die("not called"), options))
        }
        expect(next).toMatchObject({ value: 2, stale: false })
        expect(Duration.toMillis(next.age!)).toBeLessThan(300)
        yield* Effect.sleep("100 millis")
        expect(yield* counterOf(redis, "computes")).toBe(2)
        expect((yield* Metric.value(tagged(Observability.computes))).count - computesBefore).toBe(1)
        // a caller that did not ask for stale values never gets one: past the time to live, a plain get is a miss
        yield* Effect.sleep("400 millis")
        expect(yield* on(n1)(Short.get("k"))).toEqual(Option.none())
        // the entry is kept for timeToLive + the stale window
        const [key] = (yield* cli(redis, "--scan", "--pattern", "fc:*")).split("\n").filter((k) => !k.endsWith("~lock"))
        const pttl = Number(yield* cli(redis, "PTTL", key!))
        expect(pttl).toBeGreaterThan(5_000)
        expect(pttl).toBeLessThanOrEqual(10_300)
      }),
    30_000
  )

  it.scopedLive("a failing background refresh is logged and leaves the stale value in place", () =>
    withLogs((entries) =>
      Effect.gen(function* () {
        const redis = yield* redisServer()
        const node = yield* strictNode(redis.url)
        const options = { staleWhileRevalidate: "10 seconds" } as const
        yield* on(node)(Short.getOrCompute("k", Effect.succeed(1), options))
        yield* Effect.sleep("400 millis")
        const stale = yield* on(node)(Short.getOrCompute("k", Effect.fail("db down" as const), options))
        expect(stale).toMatchObject({ value: 1, stale: true })
        yield* Effect.sleep("100 millis")
        expect(warnings(entries).some((w) => w.includes("background refresh failed"))).toBe(true)
        expect(yield* on(node)(Short.getOrCompute("k", Effect.fail("db down" as const), options))).toMatchObject({
          value: 1,
          stale: true
        })
      })
    )
  )
})

describe("getOrCompute staleIfError", () => {
  it.scopedLive("compute fails: the old value marked stale and the error logged; without the option: the error", () =>
    withLogs((entries) =>
      Effect.gen(function* () {
        const redis = yield* redisServer()
        const node = yield* strictNode(redis.url)
        const options = { staleIfError: "10 seconds" } as const
        yield* on(node)(Short.getOrCompute("k", Effect.succeed(1), options))
        yield* Effect.sleep("400 millis")
        const failing = Effect.fail("db down" as const)
        const served = yield* on(node)(Short.getOrCompute("k", failing, options))
        expect(served).toMatchObject({ value: 1, backend: "redis", degraded: false, stale: true })
        expect(warnings(entries).some((w) => w.includes("staleIfError"))).toBe(true)
        const plain = yield* on(node)(Effect.either(Short.getOrCompute("k", failing)))
        expect(plain).toEqual(Either.left("db down"))
        // with the lock too
        const locked = yield* on(node)(Short.getOrCompute("k", failing, { ...options, lock: true }))
        expect(locked).toMatchObject({ value: 1, stale: true })
      })
    )
  )

  it.scopedLive("computeTimeout: a computation that runs too long is interrupted and the stale value served", () =>
    Effect.gen(function* () {
      const redis = yield* redisServer()
      const node = yield* strictNode(redis.url)
      const options = { staleIfError: "10 seconds", computeTimeout: "100 millis" } as const
      yield* on(node)(Short.getOrCompute("k", Effect.succeed(1), options))
      yield* Effect.sleep("400 millis")
      const start = performance.now()
      const served = yield* on(node)(Short.getOrCompute("k", Effect.as(Effect.sleep("5 seconds"), 2), options))
      expect(served).toMatchObject({ value: 1, stale: true })
      expect(performance.now() - start).toBeLessThan(500)
    })
  )
})

describe("getOrCompute under a Redis outage (StrictDistributed)", () => {
  it.scopedLive(
    "killed or paused: lock, staleWhileRevalidate and staleIfError calls fail with CacheBackendUnavailable, never a stale value, never a local lock",
    () =>
      Effect.gen(function* () {
        const redis = yield* redisServer()
        const node = yield* strictNode(redis.url, FAIL_FAST_COMMAND_TIMEOUT_MS)
        const options = { lock: true, staleWhileRevalidate: "10 seconds", staleIfError: "10 seconds" } as const
        yield* on(node)(Short.getOrCompute("k", Effect.succeed(1), options))
        yield* Effect.sleep("400 millis")
        let computes = 0
        const compute = Effect.sync(() => ++computes)
        redis.pause()
        yield* expectFailsClosed(node, Short.getOrCompute("k", compute, options), "paused, stale entry")
        yield* expectFailsClosed(node, Short.getOrCompute("cold", compute, options), "paused, cold key")
        redis.resume()
        yield* Effect.promise(() => redis.kill())
        yield* Effect.sleep("400 millis")
        for (let i = 0; i < 3; i++) {
          const exit = yield* Effect.exit(on(node)(Short.getOrCompute("cold", compute, options)))
          expect(Exit.isFailure(exit) && exit.cause._tag === "Fail" && exit.cause.error._tag).toBe(
            "CacheBackendUnavailable"
          )
        }
        // no lock was taken anywhere, so nothing was computed
        expect(computes).toBe(0)
      }),
    30_000
  )
})

describe("getOrCompute under a Redis outage (ExplicitDegraded)", () => {
  it.scopedLive("the fallback's rules apply: a node-local lock and computation, every result marked degraded", () =>
    Effect.gen(function* () {
      const { redis, run } = yield* cacheOnFreshRedis((url) => explicitDegraded().pipe(Layer.provide(clientLayer(url))))
      const options = { lock: true, staleWhileRevalidate: "10 seconds", staleIfError: "10 seconds" } as const
      expect(yield* run(Short.getOrCompute("k", Effect.succeed(1), options))).toMatchObject({
        value: 1,
        degraded: false
      })
      yield* Effect.promise(() => redis.kill())
      // Redis down: the lock, the read and the write go to the node-local fallback (a miss there), marked degraded
      const computed = yield* run(Short.getOrCompute("k", Effect.succeed(2), options))
      expect(computed).toMatchObject({ value: 2, backend: "local_degraded", degraded: true, stale: false })
      yield* Effect.sleep("400 millis")
      const stale = yield* run(Short.getOrCompute("k", Effect.fail("db down" as const), options))
      expect(stale).toMatchObject({ value: 2, backend: "local_degraded", degraded: true, stale: true })
    })
  )
})

describe("getOrCompute freshness in LocalOnly (TestClock)", () => {
  it.effect("a sealed entry: fresh with its age, then stale only for the caller that asked, then gone", () =>
    Effect.gen(function* () {
      const Items = Keyspace.make({ name: "items", key: Schema.String, value: Schema.Number, timeToLive: "1 minute" })
      const options = { staleWhileRevalidate: "30 seconds" } as const
      expect(yield* Items.getOrCompute("k", Effect.succeed(1), options)).toEqual({
        value: 1,
        backend: "local",
        degraded: false,
        near: false,
        stale: false,
        age: Duration.zero
      })
      yield* TestClock.adjust("10 seconds")
      const fresh = Option.getOrThrow(yield* Items.get("k"))
      expect(fresh).toMatchObject({ value: 1, stale: false })
      expect(Duration.toMillis(fresh.age!)).toBe(10_000)
      yield* TestClock.adjust("55 seconds")
      // past the time to live: a plain get and a plain getOrCompute see a miss
      expect(yield* Items.get("k")).toEqual(Option.none())
      const gate = yield* Effect.makeLatch(false)
      const refresh = Effect.as(gate.await, 2)
      const stale = yield* Items.getOrCompute("k", refresh, options)
      expect(stale).toMatchObject({ value: 1, stale: true })
      expect(Duration.toMillis(stale.age!)).toBe(65_000)
      // the refresh runs once in the background
      const again = yield* Items.getOrCompute("k", Effect.die("a second refresh"), options)
      expect(again).toMatchObject({ value: 1, stale: true })
      yield* gate.open
      yield* Effect.yieldNow()
      yield* TestClock.adjust("1 millis")
      expect(yield* Items.getOrCompute("k", Effect.die("not called"), options)).toMatchObject({
        value: 2,
        stale: false
      })
      // past timeToLive + the window the entry is gone from the store
      yield* TestClock.adjust("91 seconds")
      const fiber = yield* Effect.fork(Items.getOrCompute("k", Effect.succeed(3), options))
      expect(yield* Fiber.join(fiber)).toMatchObject({ value: 3, stale: false })
    }).pipe(Effect.provide(LocalOnly))
  )

  it.effect("computeTimeout serves the stale value only while staleIfError covers it, then waits for compute", () =>
    Effect.gen(function* () {
      const Items = Keyspace.make({ name: "slow", key: Schema.String, value: Schema.Number, timeToLive: "1 minute" })
      const options = { staleIfError: "10 seconds", computeTimeout: "1 second" } as const
      const slow = Effect.as(Effect.sleep("20 seconds"), 2)
      yield* Items.getOrCompute("k", Effect.succeed(1), options)
      yield* TestClock.adjust("65 seconds")
      const served = yield* Effect.fork(Items.getOrCompute("k", slow, options))
      yield* TestClock.adjust("1 second")
      expect(yield* Fiber.join(served)).toMatchObject({ value: 1, stale: true })
      // the timeout fires at 70.5 s, after the staleIfError window (70 s): the call waits for the computation
      yield* TestClock.adjust("3500 millis")
      const waits = yield* Effect.fork(Items.getOrCompute("k", slow, options))
      yield* TestClock.adjust("1 second")
      expect(Option.isNone(yield* Fiber.poll(waits))).toBe(true)
      yield* TestClock.adjust("19 seconds")
      expect(yield* Fiber.join(waits)).toMatchObject({ value: 2, stale: false })
    }).pipe(Effect.provide(LocalOnly))
  )

  it.effect("invalid options are rejected with CacheValueInvalid before anything runs", () =>
    Effect.gen(function* () {
      const exit = yield* Effect.exit(
        Values.getOrCompute("k", Effect.succeed(1), { lock: true, lockTimeout: "0 millis" })
      )
      expect(Exit.isFailure(exit) && exit.cause._tag === "Fail" && exit.cause.error._tag).toBe("CacheValueInvalid")
    }).pipe(Effect.provide(LocalOnly))
  )
})
