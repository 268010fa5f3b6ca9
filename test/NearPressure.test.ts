/**
 * The near cache under pressure (issue 20): a stall pauses it, only a loss of coherence empties it.
 *
 * Each case runs on a real redis-server. "Kept" cases: after the lapse, once a heartbeat sent after it is answered,
 * the untouched entries are near hits again with no Redis read (on the behaviour before issue 20 they were emptied:
 * these tests fail there). "Emptied" cases: once the proof is back, no entry of before is served near.
 */
import { spawn } from "node:child_process"
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Either, Layer, Metric, Option, Schema } from "effect"
import type { Cached } from "effect-failclosed"
import { Keyspace, Observability, RedisClient, strictDistributed } from "effect-failclosed"
import { Redis } from "ioredis"
import { on, type Node } from "./support/nodes.js"
import { redisServer, type RedisServer } from "./support/RedisServer.js"
import { tcpProxy } from "./support/TcpProxy.js"

const MAX_STALENESS_MS = 300
const COMMAND_TIMEOUT_MS = 200
const Value = Schema.Struct({ n: Schema.Number })
const Items = Keyspace.make({
  name: "near-pressure",
  key: Schema.String,
  value: Value,
  timeToLive: "10 minutes",
  nearCache: { capacity: 1_000, maxStaleness: Duration.millis(MAX_STALENESS_MS) }
})

const makeNode = (url: string) =>
  Layer.build(
    Layer.fresh(
      strictDistributed({ cooldown: "100 millis" }).pipe(
        Layer.provide(RedisClient.layer({ url, commandTimeout: Duration.millis(COMMAND_TIMEOUT_MS) }))
      )
    )
  ) as Effect.Effect<Node, never, import("effect").Scope.Scope>

const rawClient = (url: string) =>
  Effect.acquireRelease(
    Effect.sync(() => new Redis(url, { maxRetriesPerRequest: 0 }).on("error", () => {})),
    (r) => Effect.sync(() => r.disconnect())
  )

const valueOf = (o: Option.Option<Cached<{ readonly n: number }>>) => (Option.isSome(o) ? o.value.value.n : undefined)
const nearOf = (o: Option.Option<Cached<{ readonly n: number }>>) => Option.isSome(o) && o.value.near

/** reads `key` until it is a near hit (at most `ms`); the number of reads that were not */
const warm = (node: Node, key: string, ms = 5_000) =>
  Effect.gen(function* () {
    const start = performance.now()
    let misses = 0
    for (;;) {
      const r = yield* Effect.either(on(node)(Items.get(key)))
      if (Either.isRight(r) && nearOf(r.right)) return misses
      misses++
      if (performance.now() - start > ms) return yield* Effect.dieMessage(`no near hit of ${key} within ${ms} ms`)
      yield* Effect.sleep("1 millis")
    }
  })

/** how many of `keys` are near hits now (one read each) */
const nearHits = (node: Node, keys: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    let hits = 0
    for (const key of keys) {
      const r = yield* on(node)(Items.get(key))
      expect(Option.isSome(r), key).toBe(true)
      if (nearOf(r)) hits++
    }
    return hits
  })

const getCalls = (redis: RedisServer) =>
  Effect.map(
    Effect.promise(() => redis.command("INFO", "commandstats")),
    (info) => Number(/cmdstat_get:calls=(\d+)/.exec(info)?.[1] ?? 0)
  )

const keys = (n: number, tag: string) => Array.from({ length: n }, (_, i) => `${tag}-${i}`)

/** the store key of `key` (found by writing it alone into an empty keyspace) and the keyspace's prefix */
const storeKeyOf = (a: Node, raw: Redis, key: string, n: number) =>
  Effect.gen(function* () {
    const before = new Set(yield* Effect.promise(() => raw.keys("*")))
    yield* on(a)(Items.set(key, { n }))
    const found = (yield* Effect.promise(() => raw.keys("*"))).filter((k) => !before.has(k))
    expect(found).toHaveLength(1)
    const storeKey = found[0]!
    return { storeKey, prefix: storeKey.slice(0, storeKey.lastIndexOf(":") + 1) }
  })

/**
 * One node B holding `count` entries near (written by a node A) plus a probe key, on one redis-server (B possibly
 * through `bUrl`, a proxy).
 */
const setUp = (
  count: number,
  bUrl?: (redis: RedisServer) => Effect.Effect<string, never, import("effect").Scope.Scope>
) =>
  Effect.gen(function* () {
    const redis = yield* redisServer()
    const raw = yield* rawClient(redis.url)
    const a = yield* makeNode(redis.url)
    const b = yield* makeNode(bUrl === undefined ? redis.url : yield* bUrl(redis))
    const first = yield* storeKeyOf(a, raw, "k-0", 0)
    const untouched = keys(count, "k")
    for (const key of untouched) yield* on(a)(Items.set(key, { n: 0 }))
    yield* on(a)(Items.set("probe", { n: 0 }))
    // every key near at once (a heartbeat lapsing on a loaded machine pauses near hits for a moment: warm again)
    for (let attempt = 0; ; attempt++) {
      yield* warm(b, "probe")
      for (const key of untouched) yield* warm(b, key)
      if ((yield* nearHits(b, untouched)) === count) break
      expect(attempt, "all keys near at once").toBeLessThan(5)
    }
    return { redis, raw, a, b, untouched, first }
  })

/** after a loss: once the proof is back (the probe is a near hit again), no entry of before is served near */
const expectEmptied = (b: Node, untouched: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    yield* warm(b, "probe", 10_000)
    expect(yield* nearHits(b, untouched), "entries of before served near after a loss").toBe(0)
  })

const flushes = Metric.value(Observability.nearFlushes.pipe(Metric.tagged("keyspace", "near-pressure")))

describe("near cache: a stall pauses it", () => {
  it.scopedLive(
    "a 1.6 s synchronous stall while another process overwrites one key: that key reads fresh, the untouched ones are near hits again without a Redis read",
    () =>
      Effect.gen(function* () {
        const { redis, b, untouched, first } = yield* setUp(200)
        const rest = untouched.slice(1)
        const flushesBefore = (yield* flushes).count
        // another process overwrites k-0 400 ms into the stall (spawned before it: it runs while this one is stuck)
        const writer = spawn(
          "sh",
          ["-c", `sleep 0.4 && redis-cli -h 127.0.0.1 -p ${redis.port} SET '${first.storeKey}' '{"n":1}'`],
          { stdio: "ignore" }
        )
        const written = Effect.async<number>((resume) => {
          writer.on("exit", (code) => resume(Effect.succeed(code ?? -1)))
        })
        const getsBefore = yield* getCalls(redis)
        const stalledUntil = yield* Effect.sync(() => {
          const end = performance.now() + 1_600
          while (performance.now() < end) {
            // a CPU-bound task: no I/O, no timer, for 1.6 s (over five times maxStaleness)
          }
          return performance.now()
        })
        // the overwritten key reads fresh at once (the proof is missing: this read goes to Redis)
        const fresh = yield* on(b)(Items.get("k-0"))
        expect(valueOf(fresh)).toBe(1)
        expect(nearOf(fresh)).toBe(false)
        expect(yield* written).toBe(0)
        // the proof is back when a heartbeat sent after the stall is answered: k-0, read again, is near again
        const k0Misses = yield* warm(b, "k-0", 2_000)
        const backAfter = performance.now() - stalledUntil
        const hits = yield* nearHits(b, rest)
        const readWithin = performance.now() - stalledUntil
        const gets = (yield* getCalls(redis)) - getsBefore
        // eslint-disable-next-line no-console
        console.log(
          `stall 1.6 s: proof back ${backAfter.toFixed(1)} ms after the stall; untouched keys near ${hits}/${rest.length}, ` +
            `all read within ${readWithin.toFixed(1)} ms of the stall's end; GETs to Redis ${gets} (k-0: ${1 + k0Misses})`
        )
        // every untouched key is a near hit again from the moment the proof is back (nothing to refill). That moment
        // is one round trip after the event loop is back: 8-24 ms when this file runs alone on this 2-core machine
        // (target 100 ms), 150-460 ms on this machine at a load average of 25-30: the bound checked here is 1 s
        expect(hits).toBeGreaterThanOrEqual(Math.ceil(0.95 * rest.length))
        expect(backAfter).toBeLessThan(1_000)
        // no Redis read for the untouched keys served near: every GET was a read of k-0 (the fresh read, and reads
        // until near) or of an untouched key that was not a near hit (a heartbeat lapsing again while this loaded
        // machine reads the 199 keys pauses near hits: those reads go to Redis)
        expect(gets).toBe(1 + k0Misses + (rest.length - hits))
        expect((yield* flushes).count - flushesBefore, "a stall never empties the near cache").toBe(0)
        // and k-0 is never served with its old value again
        for (let i = 0; i < 10; i++) expect(valueOf(yield* on(b)(Items.get("k-0")))).toBe(1)
      })
  )

  it.scopedLive("Redis paused (SIGSTOP) past maxStaleness: no near hit meanwhile, the entries served again after", () =>
    Effect.gen(function* () {
      const { redis, b, untouched } = yield* setUp(50)
      const flushesBefore = (yield* flushes).count
      redis.pause()
      yield* Effect.sleep(Duration.millis(MAX_STALENESS_MS + 200))
      // the proof is missing: a read is no near hit (strict: it fails closed, Redis does not answer)
      const during = yield* Effect.either(on(b)(Items.get("k-1")))
      expect(Either.isLeft(during) || !nearOf(during.right)).toBe(true)
      redis.resume()
      yield* warm(b, "probe")
      const hits = yield* nearHits(b, untouched.slice(2))
      expect(hits).toBeGreaterThanOrEqual(Math.ceil(0.95 * (untouched.length - 2)))
      expect((yield* flushes).count - flushesBefore).toBe(0)
    })
  )

  it.scopedLive(
    "a partition that TCP outlives (proxy holding bytes): writes during it are seen, the untouched entries kept",
    () =>
      Effect.gen(function* () {
        let proxy: { blackHole(): void; forward(): void } | undefined
        const { b, raw, untouched, first } = yield* setUp(50, (redis) =>
          Effect.map(tcpProxy(redis.port), (p) => {
            proxy = p
            return p.url
          })
        )
        proxy!.blackHole()
        yield* Effect.sleep(Duration.millis(MAX_STALENESS_MS + 200))
        // another client overwrites k-0 directly while B cannot hear Redis
        yield* Effect.promise(() => raw.set(first.storeKey, JSON.stringify({ n: 1 })))
        yield* Effect.sleep("200 millis")
        const during = yield* Effect.either(on(b)(Items.get("k-0")))
        expect(Either.isLeft(during) || valueOf(during.right) === 1).toBe(true)
        proxy!.forward()
        yield* warm(b, "probe")
        // the invalidation waited in the socket ahead of the PONG: k-0 is never served old (read until the data
        // connection answers again)
        for (const start = performance.now(); ;) {
          const r = yield* Effect.either(on(b)(Items.get("k-0")))
          if (Either.isRight(r)) {
            expect(valueOf(r.right)).toBe(1)
            break
          }
          expect(performance.now() - start).toBeLessThan(3_000)
          yield* Effect.sleep("10 millis")
        }
        const hits = yield* nearHits(b, untouched.slice(1))
        expect(hits).toBeGreaterThanOrEqual(Math.ceil(0.95 * (untouched.length - 1)))
      })
  )
})

describe("near cache: a loss empties it", () => {
  it.scopedLive("the invalidation connection killed (CLIENT KILL): emptied", () =>
    Effect.gen(function* () {
      const { redis, b, untouched } = yield* setUp(20)
      const flushesBefore = (yield* flushes).count
      yield* Effect.promise(() => redis.command("CLIENT", "KILL", "TYPE", "pubsub"))
      // (B learns of it when its event loop reads the socket's end; until then it is within its proof)
      yield* Effect.sleep("50 millis")
      yield* expectEmptied(b, untouched)
      expect((yield* flushes).count - flushesBefore).toBeGreaterThan(0)
    })
  )

  it.scopedLive("Redis restarted (a new run_id) with the same data: emptied, refilled from the new server", () =>
    Effect.gen(function* () {
      const { redis, b, untouched } = yield* setUp(20)
      yield* Effect.promise(() => redis.restart())
      // the data comes back as it was (a restore, a promoted replica): still nothing of before is served near
      const raw = yield* rawClient(redis.url)
      const a = yield* makeNode(redis.url)
      yield* Effect.promise(() => raw.ping())
      for (const key of [...untouched, "probe"]) yield* on(a)(Items.set(key, { n: 0 }))
      yield* expectEmptied(b, untouched)
    })
  )

  it.scopedLive("tracking re-enabled (another near-cache keyspace used on the same cache): emptied", () =>
    Effect.gen(function* () {
      const { b, untouched } = yield* setUp(20)
      const Other = Keyspace.make({
        name: "near-pressure-other",
        key: Schema.String,
        value: Value,
        timeToLive: "1 minute",
        nearCache: { capacity: 10 }
      })
      yield* on(b)(Other.get("x"))
      yield* expectEmptied(b, untouched)
    })
  )

  it.scopedLive("Redis dropped the client (pubsub output buffer limit): emptied", () =>
    Effect.gen(function* () {
      const { redis, raw, b, untouched, first } = yield* setUp(20)
      yield* Effect.promise(() => redis.command("CONFIG", "SET", "client-output-buffer-limit", "pubsub 256kb 0 0"))
      // one Redis event-loop iteration invalidates 20,000 keys of the prefix: one message of about 1 MB to B's
      // tracking connection, over the limit before a byte of it is written
      yield* Effect.promise(() =>
        raw.eval(
          "for i = 1, tonumber(ARGV[1]) do redis.call('SET', ARGV[2] .. 'storm-' .. i, 'x') end",
          0,
          "20000",
          first.prefix
        )
      )
      yield* Effect.sleep("50 millis")
      expect(redis.output).toMatch(/closed ASAP for overcoming of output buffer limits/)
      yield* expectEmptied(b, untouched)
    })
  )
})

describe("near cache: the own-write rule and its cost", () => {
  it.scopedLive(
    "after its own write a node's reads are near hits again within one round trip plus 10 ms (its invalidation, then the refill)",
    () =>
      Effect.gen(function* () {
        const redis = yield* redisServer()
        const raw = yield* rawClient(redis.url)
        const a = yield* makeNode(redis.url)
        yield* on(a)(Items.set("probe", { n: 0 }))
        yield* warm(a, "probe")
        const ioTurn = Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))
        const gaps: Array<number> = []
        const rtts: Array<number> = []
        let notNear = 0
        for (let i = 1; i <= 200; i++) {
          const sent = performance.now()
          yield* Effect.promise(() => raw.ping())
          rtts.push(performance.now() - sent)
          yield* on(a)(Items.set("own", { n: i }))
          const written = performance.now()
          // reads for 30 ms: every one answers i; the last one that was not a near hit ends the gap
          let lastMiss = written
          while (performance.now() - written < 30) {
            const r = yield* on(a)(Items.get("own"))
            expect(valueOf(r)).toBe(i)
            if (!nearOf(r)) {
              lastMiss = performance.now()
              notNear++
            }
            yield* ioTurn
          }
          gaps.push(lastMiss - written)
        }
        gaps.sort((x, y) => x - y)
        rtts.sort((x, y) => x - y)
        const p = (xs: ReadonlyArray<number>, q: number) => xs[Math.min(xs.length - 1, Math.floor(q * xs.length))]!
        // eslint-disable-next-line no-console
        console.log(
          `own write -> reads near for good after: p50 ${p(gaps, 0.5).toFixed(2)} ms, p99 ${p(gaps, 0.99).toFixed(2)} ms, ` +
            `max ${gaps.at(-1)!.toFixed(2)} ms (round trip p50 ${p(rtts, 0.5).toFixed(2)} ms, p99 ${p(rtts, 0.99).toFixed(2)} ms); ` +
            `reads in the 30 ms after a write that were not near: ${notNear}`
        )
        // the rule is kept: the own invalidation evicts the written value (some reads go to Redis) ...
        expect(notNear).toBeGreaterThan(0)
        // ... and the refill brings it back within a round trip plus 10 ms
        expect(p(gaps, 0.5)).toBeLessThan(p(rtts, 0.5) + 10)
        expect(p(gaps, 0.9)).toBeLessThan(p(rtts, 0.9) + 10)
      })
  )
})
