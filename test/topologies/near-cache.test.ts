/**
 * The near cache on a Redis Cluster (one tracking connection per master) and on Sentinel, with real servers: two or
 * three nodes (each its own Layer and client) in one process. On a cluster, B's near hits and A's invalidations on
 * keys of every master; a master killed: B's near cache goes off within the bound and comes back after the
 * promotion; a Sentinel failover: the near cache is emptied, nothing overwritten is served after it.
 */
import { describe, expect, it, layer } from "@effect/vitest"
import { Cause, Context, Duration, Effect, Either, Exit, Layer, Option, Schema } from "effect"
import type { Cached } from "effect-failclosed"
import { Keyspace, RedisClient, strictDistributed } from "effect-failclosed"
import { hashString } from "@effect-failclosed/core"
import { on, type Node } from "../support/nodes.js"
import { redisCluster, type RedisCluster } from "../support/RedisCluster.js"
import { redisSentinel } from "../support/RedisSentinel.js"
import type { RedisServer } from "../support/RedisServer.js"

const MAX_STALENESS_MS = 300
const COMMAND_TIMEOUT_MS = 300
const KEY_PREFIX = "ncx"
/** after a master is killed, a node serves no near hit later than this */
const OFF_BOUND_MS = MAX_STALENESS_MS + COMMAND_TIMEOUT_MS
/**
 * No replica is promoted before this (cluster node timeout, Sentinel down-after: 1 s each): from the bound to here,
 * a node that serves a near hit does so without proof.
 */
const FAILOVER_FLOOR_MS = 1_000

const Items = Keyspace.make({
  name: "near-topo",
  key: Schema.String,
  value: Schema.Struct({ n: Schema.Number }),
  timeToLive: "10 minutes",
  nearCache: { capacity: 1_000, maxStaleness: Duration.millis(MAX_STALENESS_MS) }
})

type Read = Either.Either<Option.Option<Cached<{ readonly n: number }>>, { readonly _tag: string }>

const node = (client: Layer.Layer<RedisClient>) =>
  Layer.build(
    Layer.fresh(strictDistributed({ keyPrefix: KEY_PREFIX, cooldown: "200 millis" }).pipe(Layer.provide(client)))
  ) as Effect.Effect<Node, never, import("effect").Scope.Scope>

const clusterNode = (cluster: RedisCluster) =>
  node(RedisClient.layerCluster({ nodes: cluster.nodes, commandTimeout: Duration.millis(COMMAND_TIMEOUT_MS) }))

const read = (n: Node, key: string): Effect.Effect<Read> => Effect.either(on(n)(Items.get(key))) as Effect.Effect<Read>
const valueOf = (r: Read) => (Either.isRight(r) && Option.isSome(r.right) ? r.right.value.value.n : undefined)
const isNear = (r: Read) => Either.isRight(r) && Option.isSome(r.right) && r.right.value.near

/** until `f` holds (polling every 2 ms), at most `ms`; the time it took */
const until = (f: () => Effect.Effect<boolean>, ms: number, label: string) =>
  Effect.gen(function* () {
    const start = performance.now()
    while (!(yield* f())) {
      if (performance.now() - start > ms) return yield* Effect.dieMessage(`${label}: not within ${ms} ms`)
      yield* Effect.sleep("2 millis")
    }
    return performance.now() - start
  })

const warm = (n: Node, key: string) => until(() => Effect.map(read(n, key), isNear), 5_000, `near hit of ${key}`)

/** the port of the master that holds each key (A has written every key): found by scanning every master */
const keysByMaster = (cluster: RedisCluster, keys: ReadonlyArray<string>) =>
  Effect.promise(async () => {
    const nodes = await cluster.topology()
    const masters = nodes.filter((n) => n.role === "master" && !n.failing && n.slots.length > 0)
    const byMaster = new Map<number, Array<string>>()
    for (const m of masters) {
      const stored = (await cluster.serverAt(m.port).command("--scan", "--pattern", `${KEY_PREFIX}:*`)).split("\n")
      byMaster.set(
        m.port,
        keys.filter((k) => stored.some((s) => s.endsWith(hashString(k))))
      )
    }
    return byMaster
  })

const percentile = (sorted: ReadonlyArray<number>, p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!

const sleep = (ms: number) => Effect.sleep(Duration.millis(ms))

/**
 * A master (the cluster master of `key`, or the Sentinel master) is killed while B reads all along and C reads
 * nothing. As soon as the harness sees the replica promoted, `key` is overwritten behind the library's back (raw SET
 * on the new master: no node's tracking connection may be there yet, so only the flush of a failover protects a node
 * that held the old value). Checks: B's near hits stop within maxStaleness + command timeout of the kill (strict: it
 * fails closed or reads Redis), B serves near hits again after the promotion, and C's first reads after it (its
 * proof back, no read in between that could have emptied its near cache on the way) never give the old value; then A
 * writes on, and no node serves a value overwritten more than maxStaleness before its read. Returns the figures.
 */
const killUnderReads = (options: {
  readonly a: Node
  readonly b: Node
  readonly c: Node
  readonly key: string
  /** another key (another master of a cluster): B's near hits of it stop too (the proof is every master's) */
  readonly otherKey: string | undefined
  readonly victim: RedisServer
  /** SIGKILL, or SIGSTOP (a black hole: no connection closes, only the heartbeat tells) */
  readonly fault: "kill" | "pause"
  /** resolves with the new master of `storeKey` once a replica is promoted */
  readonly promoted: (storeKey: string) => Promise<RedisServer>
}) =>
  Effect.gen(function* () {
    const { a, b, c, key, otherKey, victim } = options
    // the value last written, and when each earlier value was overwritten (its successor's write sent)
    let last = 1
    const overwrittenAt = new Map<number, number>()
    yield* on(a)(Items.set(key, { n: 1 }))
    if (otherKey !== undefined) yield* on(a)(Items.set(otherKey, { n: 1 }))
    const storeKey = (yield* Effect.promise(() => victim.command("--scan", "--pattern", `${KEY_PREFIX}:*`)))
      .split("\n")
      .find((s) => s.endsWith(hashString(key)))!
    expect(storeKey).toBeDefined()
    yield* warm(b, key)
    yield* warm(c, key)
    if (otherKey !== undefined) yield* warm(b, otherKey)
    // replication of the writes to the replica that will be promoted
    yield* sleep(300)

    const check = (r: Read, started: number, label: string) => {
      if (Either.isLeft(r)) {
        expect(r.left._tag, label).toBe("CacheBackendUnavailable")
        return
      }
      const n = valueOf(r)
      expect(n, `${label}: an entry`).toBeDefined()
      if (n! < last) {
        const at = overwrittenAt.get(n!)!
        expect(at, `${label}: served ${n}, overwritten after the read started`).toBeDefined()
        expect(started - at, `${label}: served ${n}, overwritten ${Math.round(started - at)} ms before`).toBeLessThan(
          MAX_STALENESS_MS
        )
      }
    }

    const cut = performance.now()
    yield* Effect.promise(() => (options.fault === "kill" ? victim.kill() : Promise.resolve(victim.pause())))
    // at the promotion: the overwrite behind the library's back
    const promotion = yield* Effect.fork(
      Effect.promise(async () => {
        const master = await options.promoted(storeKey)
        // a master just promoted may still refuse a write for a moment: try again
        let sentAt = performance.now()
        for (let attempt = 0; ; attempt++) {
          sentAt = performance.now()
          try {
            await master.commandWithTimeout(1_000, "SET", storeKey, JSON.stringify({ n: 2 }))
            break
          } catch (error) {
            if (attempt >= 40) throw error
            await new Promise((resolve) => setTimeout(resolve, 50))
          }
        }
        overwrittenAt.set(1, sentAt)
        last = 2
        return sentAt - cut
      })
    )
    let promotedAt: number | undefined
    let wentOffAt: number | undefined
    let lastNearBeforeOff = 0
    let nearAgainAt: number | undefined
    let failedClosed = 0
    let redisReads = 0
    let readsInWindow = 0
    const lateNearHits: Array<string> = []
    const deadline = cut + 30_000
    for (;;) {
      const polled = promotion.unsafePoll()
      if (promotedAt === undefined && polled !== null) {
        if (Exit.isFailure(polled)) return yield* Effect.die(Cause.squash(polled.cause))
        promotedAt = polled.value
      }
      for (const k of otherKey === undefined ? [key] : [key, otherKey]) {
        const started = performance.now()
        const r = yield* read(b, k)
        const at = performance.now() - cut
        if (k === key) check(r, started, "B")
        else if (Either.isRight(r)) expect(valueOf(r), "B, other key").toBe(1)
        if (at > OFF_BOUND_MS && at < FAILOVER_FLOOR_MS) {
          readsInWindow++
          if (isNear(r))
            lateNearHits.push(
              `${k === key ? "the killed master's key" : "another master's key"} at ${Math.round(at)} ms`
            )
        }
        if (isNear(r)) {
          if (wentOffAt === undefined) lastNearBeforeOff = at
          else if (k === key && promotedAt !== undefined) nearAgainAt ??= at
        } else {
          wentOffAt ??= at
          if (Either.isLeft(r)) failedClosed++
          else redisReads++
        }
      }
      if (nearAgainAt !== undefined && performance.now() - cut - nearAgainAt > 500) break
      expect(performance.now(), "B serves near hits again after the promotion").toBeLessThan(deadline)
      yield* sleep(5)
    }
    expect(wentOffAt, "B's near hits stopped").toBeDefined()
    expect(lastNearBeforeOff, "B's last near hit after the kill").toBeLessThan(OFF_BOUND_MS)
    // from the bound until a promotion is possible at all, B read and served no near hit of any key
    expect(readsInWindow).toBeGreaterThan(0)
    expect(lateNearHits, "near hits after the bound, before any promotion").toEqual([])
    expect(failedClosed + redisReads).toBeGreaterThan(0)

    // C: its first reads since before the kill
    let cNear = false
    for (let i = 0; i < 100; i++) {
      const started = performance.now()
      const r = yield* read(c, key)
      check(r, started, "C")
      if (isNear(r)) cNear = true
      yield* sleep(5)
    }
    expect(cNear, "C serves near hits again").toBe(true)

    // A writes again through its own client; B and C follow
    for (let i = 0; i < 20; i++) {
      const sentAt = performance.now()
      const ok = yield* Effect.either(on(a)(Items.set(key, { n: last + 1 })))
      if (Either.isRight(ok)) {
        overwrittenAt.set(last, sentAt)
        last++
      }
      for (let j = 0; j < 5; j++) {
        for (const n of [b, c]) {
          const started = performance.now()
          check(yield* read(n, key), started, n === b ? "B after A's writes" : "C after A's writes")
        }
        yield* sleep(5)
      }
    }
    expect(last, "A wrote again").toBeGreaterThan(10)
    const final = yield* until(
      () => Effect.map(read(b, key), (r) => valueOf(r) === last && isNear(r)),
      3_000,
      "B serves A's last write near"
    )
    return {
      lastNearAfterKillMs: Math.round(lastNearBeforeOff),
      offAfterMs: Math.round(wentOffAt!),
      promotedAndOverwrittenAfterMs: Math.round(promotedAt ?? NaN),
      nearAgainAfterMs: Math.round(nearAgainAt!),
      failedClosed,
      redisReads,
      finalMs: Math.round(final)
    }
  })

class ClusterTag extends Context.Tag("test/NearCluster")<ClusterTag, RedisCluster>() {}

describe("near cache on a Redis Cluster", () => {
  layer(Layer.scoped(ClusterTag, redisCluster()), { excludeTestServices: true, timeout: "60 seconds" })((it) => {
    it.scoped(
      "B's near hits on keys of every master, and A's writes on each master reach B",
      () =>
        Effect.gen(function* () {
          const cluster = yield* ClusterTag
          const a = yield* clusterNode(cluster)
          const b = yield* clusterNode(cluster)
          const keys = Array.from({ length: 24 }, (_, i) => `k${i}`)
          for (const k of keys) yield* on(a)(Items.set(k, { n: 0 }))
          const byMaster = yield* keysByMaster(cluster, keys)
          expect(byMaster.size).toBe(3)
          const chosen = Array.from(byMaster.values(), (ks) => ks.slice(0, 3))
          for (const ks of chosen) expect(ks.length).toBeGreaterThan(0)

          for (const ks of chosen) for (const k of ks) yield* warm(b, k)
          const delays: Array<Array<number>> = chosen.map(() => [])
          const nearBefore = chosen.map(() => 0)
          let reads = 0
          for (let i = 1; i <= 60; i++) {
            for (let m = 0; m < chosen.length; m++) {
              for (const k of chosen[m]!) {
                const before = yield* read(b, k)
                expect(valueOf(before)).toBe(i - 1)
                if (isNear(before)) nearBefore[m]!++
                reads++
                yield* on(a)(Items.set(k, { n: i }))
                const written = performance.now()
                for (;;) {
                  const seen = yield* read(b, k)
                  const n = valueOf(seen)
                  if (n === i) break
                  expect(n, `B read ${n} of ${k} after A wrote ${i}`).toBe(i - 1)
                  expect(isNear(seen), "an old value only from the near cache").toBe(true)
                  expect(performance.now() - written).toBeLessThan(MAX_STALENESS_MS)
                  yield* Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))
                }
                delays[m]!.push(performance.now() - written)
                // and never the old one again
                expect(valueOf(yield* read(b, k))).toBe(i)
              }
            }
          }
          const perMaster = reads / chosen.length
          for (const n of nearBefore) expect(n, "near hits on every master").toBeGreaterThan(perMaster / 2)
          const summary = delays.map((d, m) => {
            d.sort((x, y) => x - y)
            return `master ${m + 1}: near ${nearBefore[m]}/${perMaster}, p50 ${percentile(d, 50).toFixed(2)} ms, max ${d[d.length - 1]!.toFixed(1)} ms`
          })
          console.log(`[near cluster] A's set answered -> B stops serving the old value; ${summary.join("; ")}`)
        }),
      60_000
    )

    for (const fault of ["kill", "pause"] as const) {
      it.scoped(
        `a master ${fault === "kill" ? "killed" : "paused (SIGSTOP)"}: B's near hits stop within maxStaleness + command timeout, come back after the promotion, never an overwritten value`,
        () =>
          Effect.gen(function* () {
            const cluster = yield* ClusterTag
            const a = yield* clusterNode(cluster)
            const b = yield* clusterNode(cluster)
            const c = yield* clusterNode(cluster)
            const keys = Array.from({ length: 24 }, (_, i) => `${fault}${i}`)
            for (const k of keys) yield* on(a)(Items.set(k, { n: 0 }))
            const byMaster = yield* keysByMaster(cluster, keys)
            // a master with a live replica (after the previous case, one shard has none)
            const topology = yield* Effect.promise(() => cluster.topology())
            const victimInfo = topology.find(
              (m) =>
                m.role === "master" &&
                (byMaster.get(m.port)?.length ?? 0) > 0 &&
                topology.some(
                  (r) => r.role === "replica" && r.masterId === m.id && !r.failing && cluster.serverAt(r.port).isRunning
                )
            )!
            expect(victimInfo).toBeDefined()
            const victim = cluster.serverAt(victimInfo.port)
            const key = byMaster.get(victimInfo.port)![0]!
            const otherKey = Array.from(byMaster.entries()).find(
              ([port, ks]) => port !== victimInfo.port && ks.length
            )![1][0]
            const figures = yield* killUnderReads({
              a,
              b,
              c,
              key,
              otherKey,
              victim,
              fault,
              promoted: async (storeKey) => cluster.waitForPromotion(await cluster.slotOf(storeKey), victim, 20_000)
            })
            console.log(`[near cluster] master ${fault}: ${JSON.stringify(figures)}`)
          }),
        60_000
      )
    }
  })
})

describe("near cache on Sentinel", () => {
  it.scopedLive(
    "a failover (master killed, replica promoted): the near cache is emptied, nothing overwritten is served after it",
    () =>
      Effect.gen(function* () {
        const sentinel = yield* redisSentinel()
        const client = () =>
          RedisClient.layerSentinel({
            sentinels: sentinel.sentinelAddresses,
            name: sentinel.name,
            commandTimeout: Duration.millis(COMMAND_TIMEOUT_MS)
          })
        const a = yield* node(client())
        const b = yield* node(client())
        const c = yield* node(client())
        const victim = yield* Effect.promise(() => sentinel.master())
        const figures = yield* killUnderReads({
          a,
          b,
          c,
          key: "s",
          otherKey: undefined,
          victim,
          fault: "kill",
          promoted: () => sentinel.waitForFailover(victim, 20_000)
        })
        console.log(`[near sentinel] master killed: ${JSON.stringify(figures)}`)
      }),
    60_000
  )
})
