/**
 * The Effect 4 line's bench rows, in the same harness and method as the Effect 3 line's (`bench/harness.ts`:
 * interleaved rounds, medians of per-round ratios, redis-server CPU per operation): the public `strictDistributed()`
 * Layer over `RedisClient.layer`, against the **Effect 4 floor** (the same ioredis call in a bare `Effect.callback`,
 * run by the same fiber loop) and raw ioredis as users get it (default client sequentially, auto-pipelined with 256
 * in flight). Run by `npm run bench` at the root after the Effect 3 rows (on Node 24), or alone with
 * `npm run bench -w effect-failclosed-effect4`. Prints a Markdown table.
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Schema from "effect/Schema"
import { Redis } from "ioredis"
import { FeatureKeys, HASH_TAG_END, rateLimitScripts, replayGuardHead } from "@effect-failclosed/core"
import {
  type DistributedCache,
  Keyspace,
  localOnly,
  RateLimiter,
  RedisClient,
  ReplayGuard,
  strictDistributed
} from "../src/index.js"
import {
  type Case,
  promiseWorkers,
  QUICK,
  type Result,
  runCase,
  type Runner,
  type Settings,
  type Target,
  targetSummary,
  toMarkdown
} from "../../bench/harness.js"
import { startRedis } from "../../test/support/RedisServer.js"

const KEYS = 1_000
const TTL_MILLIS = 10 * 60 * 1000
const settings: Settings = QUICK
  ? { rounds: 3, sampleMillis: 50, warmupOps: 1024 }
  : { rounds: 11, sampleMillis: 200, warmupOps: 1024 }

/** the targets of issue 22: the Effect 4 line ≥ 0.95× the Effect 4 floor, sequential and 256 in flight */
const TARGET: Target = { ratio: 0.95 }

const User = Schema.Struct({
  id: Schema.Number,
  name: Schema.String,
  email: Schema.String,
  roles: Schema.Array(Schema.String)
})
const userOf = (id: number) => ({ id, name: `user ${id}`, email: `user${id}@example.com`, roles: ["reader", "writer"] })
const users = Array.from({ length: 3 * KEYS }, (_, i) => userOf(i))
const Users = Keyspace.make({
  name: "users",
  key: Schema.Struct({ id: Schema.Number }),
  value: User,
  timeToLive: TTL_MILLIS
})
/** the same keyspace with a near cache: its hits against the LocalOnly hits of the same keyspace (issue 22: ≥ 0.9×) */
const NearUsers = Keyspace.make({
  name: "users",
  key: Schema.Struct({ id: Schema.Number }),
  value: User,
  timeToLive: TTL_MILLIS,
  nearCache: { capacity: 2 * KEYS }
})
const NEAR_TARGET: Target = { ratio: 0.9 }
const hitId = (i: number) => i % KEYS
const missId = (i: number) => KEYS + (i % KEYS)
const goneId = (i: number) => 2 * KEYS + (i % KEYS)
const rawKey = (id: number) => "raw:user:" + id

/** `ops` runs of `body` on `inFlight` fibers, each running its next operation when the previous one completed */
const effectWorkers =
  <E, R>(
    inFlight: number,
    body: (i: number) => Effect.Effect<unknown, E, R>,
    run: (effect: Effect.Effect<void, E, R>) => Promise<void>
  ): Runner =>
  (ops) =>
    run(
      Effect.suspend(() => {
        let next = 0
        const worker = Effect.whileLoop({ while: () => next < ops, body: () => body(next++), step: () => {} })
        if (inFlight === 1) return worker
        return Effect.forEach(
          Array.from({ length: inFlight }, () => worker),
          (w) => w,
          { concurrency: "unbounded", discard: true }
        )
      })
    )

/** the Effect 4 floor: the same ioredis call in a bare `Effect.callback`, on the default runtime */
const effectFloor = (inFlight: number, body: (i: number) => Promise<unknown>): Runner =>
  effectWorkers(
    inFlight,
    (i) =>
      Effect.callback<unknown, unknown>((resume) => {
        body(i).then(
          (a) => resume(Effect.succeed(a)),
          (e) => resume(Effect.fail(e))
        )
      }),
    Effect.runPromise
  )

const main = async () => {
  // `BENCH_ONLY=local,redis npm run bench` at the root: the Effect 4 rows run only when asked for (`effect4`)
  const only = process.env["BENCH_ONLY"]
  if (
    only !== undefined &&
    !only
      .split(",")
      .map((s) => s.trim())
      .includes("effect4")
  )
    return
  const redis = await startRedis()
  const cpu = new Redis(redis.url)
  const serverCpu = async () => {
    const info = await cpu.info("cpu")
    const field = (name: string) => Number(new RegExp(`^${name}:([0-9.]+)`, "m").exec(info)?.[1] ?? NaN)
    return field("used_cpu_user") + field("used_cpu_sys")
  }
  const clients = { 1: new Redis(redis.url), 256: new Redis(redis.url, { enableAutoPipelining: true }) }
  const runtime = ManagedRuntime.make(
    strictDistributed().pipe(Layer.provide(RedisClient.layer({ url: redis.url, commandTimeout: "5 seconds" })))
  )
  const run = <A, E>(effect: Effect.Effect<A, E, DistributedCache>) => runtime.runPromise(Effect.asVoid(effect))
  const results: Array<Result> = []
  try {
    await runtime.context()
    await Promise.all(users.slice(0, KEYS).map((u) => run(Users.set({ id: u.id }, u))))
    await Promise.all(
      users.slice(0, KEYS).map((u) => clients[1].set(rawKey(u.id), JSON.stringify(u), "PX", TTL_MILLIS))
    )
    const Limiter = RateLimiter.make({ name: "bench", limit: 1_000_000, window: 1_000, algorithm: "fixed-window" })
    const Guard = ReplayGuard.make({ name: "bench", window: 5_000 })
    const fixedWindow = rateLimitScripts["fixed-window"]
    // the raw side's EVALSHA needs the script loaded (the library's first call loads it with EVAL)
    await clients[1].script("LOAD", fixedWindow.lua)
    const guardKeys = new FeatureKeys((p) => replayGuardHead(p, "raw-bench"), "string", HASH_TAG_END)
    let nonce = 0
    for (const inFlight of [1, 256] as const) {
      const raw = clients[inFlight]
      const kind = inFlight === 1 ? "default" : "auto-pipelined"
      const read = async (id: number) => {
        const s = await raw.get(rawKey(id))
        return s === null ? undefined : (JSON.parse(s) as unknown)
      }
      const rows: ReadonlyArray<
        readonly [
          string,
          (i: number) => Effect.Effect<unknown, unknown, DistributedCache>,
          (i: number) => Promise<unknown>
        ]
      > = [
        ["get (hit)", (i) => Users.get({ id: hitId(i) }), (i) => read(hitId(i))],
        ["get (miss)", (i) => Users.get({ id: missId(i) }), (i) => read(missId(i))],
        [
          "set",
          (i) => Users.set({ id: hitId(i) }, users[hitId(i)]!),
          (i) => raw.set(rawKey(hitId(i)), JSON.stringify(users[hitId(i)]), "PX", TTL_MILLIS)
        ],
        ["invalidate", (i) => Users.invalidate({ id: goneId(i) }), (i) => raw.unlink(rawKey(goneId(i)))],
        [
          "consume (fixed window)",
          (i) => Limiter.consume(`user-${i % KEYS}`),
          // the same script by its SHA (EVALSHA), as the store sends it, on a key of the same shape
          (i) => raw.evalsha(fixedWindow.sha, 1, `raw:{rf:bench:-:user-${i % KEYS}}`, 1_000_000, 1_000, 1)
        ],
        [
          "claim",
          () => Guard.claim(`n-${nonce++}`),
          () => raw.set(guardKeys.key("raw", undefined, `n-${nonce++}`), "1", "PX", 5_000, "NX")
        ]
      ]
      for (const [name, lib, rawBody] of rows) {
        const c: Case = {
          group: `Effect 4, Redis, ${inFlight === 1 ? "sequential" : `${inFlight} in flight`}`,
          name,
          library: { label: "effect-failclosed-effect4", run: effectWorkers(inFlight, lib, run) },
          baselines: [
            {
              label: `Effect 4 floor: Effect.callback(raw ioredis (${kind}))`,
              run: effectFloor(inFlight, rawBody),
              target: TARGET
            },
            { label: `raw ioredis (${kind})`, run: promiseWorkers(inFlight, rawBody) }
          ],
          serverCpu
        }
        process.stderr.write(`effect4 bench: ${c.group} · ${name}\n`)
        results.push(await runCase(c, settings))
      }
    }
    // near hits (StrictDistributed, after a warm-up that fills the near cache) against LocalOnly hits
    const local = ManagedRuntime.make(localOnly({ capacity: 2 * KEYS }))
    try {
      const runLocal = <A, E>(effect: Effect.Effect<A, E, DistributedCache>) => local.runPromise(Effect.asVoid(effect))
      await Promise.all(users.slice(0, KEYS).map((u) => runLocal(NearUsers.set({ id: u.id }, u))))
      const deadline = Date.now() + 5_000
      // reads until every hit key is near (the first reads go to Redis and fill the near cache)
      for (;;) {
        const reads = await Promise.all(
          users.slice(0, KEYS).map((u) => runtime.runPromise(NearUsers.get({ id: u.id })))
        )
        if (reads.every((r) => r._tag === "Some" && r.value.near) || Date.now() > deadline) break
      }
      const c: Case = {
        group: "Effect 4, local",
        name: "near hit (StrictDistributed) vs LocalOnly hit",
        library: { label: "near hit", run: effectWorkers(1, (i) => NearUsers.get({ id: hitId(i) }), run) },
        baselines: [
          {
            label: "LocalOnly hit (same keyspace)",
            run: effectWorkers(1, (i) => NearUsers.get({ id: hitId(i) }), runLocal),
            target: NEAR_TARGET
          }
        ]
      }
      process.stderr.write(`effect4 bench: ${c.group} · ${c.name}\n`)
      results.push(await runCase(c, settings))
    } finally {
      await local.dispose()
    }
  } finally {
    await runtime.dispose()
    clients[1].disconnect()
    clients[256].disconnect()
    cpu.disconnect()
    await redis.stop()
  }
  console.log(
    `\n## The Effect 4 line (effect-failclosed-effect4, effect ${(await import("effect/package.json", { with: { type: "json" } })).default.version}, Node ${process.version})\n`
  )
  console.log(toMarkdown(results))
  console.log(targetSummary(results))
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
