/**
 * Memory figures, measured in a child process of their own so that no earlier benchmark's
 * heap shows in them (`index.ts` spawns this file with `--expose-gc`):
 *
 * - bytes per entry of a LocalOnly store holding 100,000 entries (heap delta / entries), next
 *   to a bare `Map<string, string>` of the same keys and values (the floor) and `lru-cache`, and
 *   of a near cache (issue 13) holding 100,000 entries read from Redis;
 * - the process's RSS and heap before and after 1,000,000 mixed keyspace operations against
 *   Redis (60 % get hit, 10 % get miss, 20 % set, 5 % getOrCompute, 5 % invalidate; 256 in
 *   flight), sampled every quarter.
 *
 * Run alone: `tsx bench/memory.ts redis://127.0.0.1:<port>`; it prints one JSON line.
 */
import { pathToFileURL } from "node:url"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import { LRUCache } from "lru-cache"
import * as Duration from "effect/Duration"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { type Cached, DistributedCache, Keyspace, localOnly, RedisClient, strictDistributed } from "../src/index.js"
import { canonicalJson, hashCanonical, keyspaceHead, NO_TENANT_SEGMENT } from "@effect-failclosed/core"
import {
  COMMAND_TIMEOUT,
  effectWorkers,
  goneId,
  hitId,
  missId,
  TTL_MILLIS,
  User,
  userOf,
  users,
  Users
} from "./fixtures.js"
import { gc, QUICK } from "./harness.js"

export interface MemoryReport {
  readonly entries: number
  /** mean bytes of one encoded value (UTF-8 JSON) */
  readonly valueBytes: number
  readonly perEntry: {
    readonly localOnly: number
    readonly map: number
    readonly lruCache: number
    /** a near-cache keyspace on Redis, every entry held near and read once (decoded) */
    readonly near: number
  }
  readonly rss: {
    readonly operations: number
    /** [operations done, rss bytes, heapUsed bytes] after a full GC */
    readonly samples: ReadonlyArray<readonly [number, number, number]>
  }
}

const heapAfterGc = () => {
  gc()
  gc()
  return process.memoryUsage().heapUsed
}

const ENTRIES = 100_000

const localOnlyPerEntry = async (): Promise<{ perEntry: number; valueBytes: number }> => {
  const rt = ManagedRuntime.make(localOnly({ capacity: ENTRIES }))
  await rt.runtime()
  let valueBytes = 0
  for (let i = 0; i < 100; i++) valueBytes += Buffer.byteLength(JSON.stringify(userOf(i)), "utf8")
  const before = heapAfterGc()
  await effectWorkers(
    1,
    (i) => Users.set({ id: i }, userOf(i)),
    (e) => rt.runPromise(e)
  )(ENTRIES)
  const after = heapAfterGc()
  const stats = await rt.runPromise(Effect.flatMap(DistributedCache, (c) => c.stats))
  if (stats.localEntries !== ENTRIES) throw new Error(`bench: expected ${ENTRIES} entries, got ${stats.localEntries}`)
  const perEntry = (after - before) / ENTRIES
  await rt.dispose()
  return { perEntry, valueBytes: valueBytes / 100 }
}

/** the same keys (same length as the keyspace's) and values in a bare Map, and in lru-cache */
const floorPerEntry = (kind: "map" | "lru"): number => {
  const prefix = keyspaceHead("fc", Users.name) + NO_TENANT_SEGMENT + ":"
  const before = heapAfterGc()
  const holder: { m?: Map<string, string> | LRUCache<string, string> } = {}
  const m = kind === "map" ? new Map<string, string>() : new LRUCache<string, string>({ max: ENTRIES })
  holder.m = m
  for (let i = 0; i < ENTRIES; i++) m.set(prefix + hashCanonical(canonicalJson({ id: i })), JSON.stringify(userOf(i)))
  const after = heapAfterGc()
  if (holder.m.size !== ENTRIES) throw new Error("bench: size mismatch")
  return (after - before) / ENTRIES
}

/**
 * Bytes per near-cache entry: ENTRIES entries written to Redis, then read through a near-cache keyspace until every
 * one is a near hit (the first read of a key fills its near entry, the next decodes it once and keeps the frozen
 * value). Heap delta / entries, from after the tracking connection serves to after the last read.
 */
const nearPerEntry = async (url: string): Promise<number> => {
  const settings = {
    name: "bench-near-memory",
    key: Schema.Struct({ id: Schema.Number }),
    value: User,
    timeToLive: Duration.millis(TTL_MILLIS)
  }
  const Stored = Keyspace.make(settings)
  const Near = Keyspace.make({ ...settings, nearCache: { capacity: ENTRIES } })
  const rt = ManagedRuntime.make(
    strictDistributed().pipe(Layer.provide(RedisClient.layer({ url, commandTimeout: COMMAND_TIMEOUT })))
  )
  const run = (e: Effect.Effect<void, unknown, DistributedCache>) =>
    rt.runPromise(e as Effect.Effect<void, unknown, never>)
  await effectWorkers(256, (i) => Stored.set({ id: i }, userOf(i)), run)(ENTRIES)
  // the tracking connection opens with the first near-cache read and serves once its heartbeat answered
  const probe = ENTRIES + 1
  await run(Stored.set({ id: probe }, userOf(0)))
  for (let attempt = 0; ; attempt++) {
    const r = await rt.runPromise(Near.get({ id: probe }) as Effect.Effect<Option.Option<Cached<unknown>>, unknown>)
    if (Option.isSome(r) && r.value.near) break
    if (attempt === 200) throw new Error("bench: the near cache does not serve near hits")
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  const before = heapAfterGc()
  // chunks of 5,000 reads with an event-loop turn between them: a long run of reads that never waits for I/O
  // starves the heartbeat, and the near cache switches itself off (as designed) in the middle of the measurement
  const CHUNK = 5_000
  let near = 0
  for (let pass = 0; pass < 10 && near < ENTRIES; pass++) {
    near = 0
    for (let from = 0; from < ENTRIES; from += CHUNK) {
      await effectWorkers(
        256,
        (i) =>
          Effect.map(Near.get({ id: from + i }), (r) => {
            if (Option.isSome(r) && r.value.near) near++
          }),
        run
      )(Math.min(CHUNK, ENTRIES - from))
      await new Promise((resolve) => setImmediate(resolve))
    }
  }
  // a loaded machine may still flush the near cache now and then: the figure is per entry held at the last pass
  if (near < ENTRIES * 0.9) throw new Error(`bench: ${near} of ${ENTRIES} near-cache reads were near hits`)
  const after = heapAfterGc()
  await run(Stored.clear())
  await rt.dispose()
  return (after - before) / near
}

const compute = Effect.succeed(users[0]!)

const mixed = (i: number) => {
  const k = i % 20
  if (k < 12) return Users.get({ id: hitId(i) })
  if (k < 14) return Users.get({ id: missId(i) })
  if (k < 18) return Users.set({ id: hitId(i) }, users[hitId(i)]!)
  if (k < 19) return Users.getOrCompute({ id: hitId(i) }, compute)
  return Users.invalidate({ id: goneId(i) })
}

const rssAfterMixed = async (url: string, operations: number) => {
  const rt = ManagedRuntime.make(
    strictDistributed().pipe(Layer.provide(RedisClient.layer({ url, commandTimeout: COMMAND_TIMEOUT })))
  )
  const run = (e: Effect.Effect<void, unknown, DistributedCache>) =>
    rt.runPromise(e as Effect.Effect<void, unknown, never>)
  const runMixed = effectWorkers(256, mixed, run)
  await runMixed(20_000) // warm-up: JIT, connection buffers
  const samples: Array<readonly [number, number, number]> = []
  const sample = (done: number) => {
    gc()
    gc()
    const m = process.memoryUsage()
    samples.push([done, m.rss, m.heapUsed] as const)
  }
  sample(0)
  const quarter = operations / 4
  for (let q = 1; q <= 4; q++) {
    await runMixed(quarter)
    sample(q * quarter)
  }
  await rt.dispose()
  return { operations, samples }
}

export const measureMemory = async (url: string): Promise<MemoryReport> => {
  // LocalOnly first, before any Redis traffic has grown the heap
  const local = await localOnlyPerEntry()
  const map = floorPerEntry("map")
  const lruCache = floorPerEntry("lru")
  const near = await nearPerEntry(url)
  const rss = await rssAfterMixed(url, QUICK ? 100_000 : 1_000_000)
  return {
    entries: ENTRIES,
    valueBytes: local.valueBytes,
    perEntry: { localOnly: local.perEntry, map, lruCache, near },
    rss
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const url = process.argv[2]
  if (url === undefined) {
    console.error("usage: tsx bench/memory.ts redis://127.0.0.1:<port>")
    process.exit(2)
  }
  measureMemory(url).then(
    (report) => {
      process.stdout.write(JSON.stringify(report) + "\n")
      process.exit(0)
    },
    (error) => {
      console.error(error)
      process.exit(1)
    }
  )
}
