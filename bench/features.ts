/**
 * The opt-in features against Redis (StrictDistributed, sequential), each against what a user would
 * otherwise run: the near cache (issue 13) against effect's `Cache`, bentocache's L1 + L2 and a plain
 * keyspace; `getOrCompute` with `staleWhileRevalidate` and with `lock` (issue 14) against its plain path;
 * `PersistedCache` over `effect-failclosed/Persistence` against `@effect/experimental`'s Redis store
 * (issue 15). Every row reports redis-server's CPU per operation.
 */
import * as PersistedCache from "@effect/experimental/PersistedCache"
import type * as Persistence from "@effect/experimental/Persistence"
import * as ExperimentalRedis from "@effect/experimental/Persistence/Redis"
import { BentoCache, bentostore } from "bentocache"
import { memoryDriver } from "bentocache/drivers/memory"
import { redisBusDriver, redisDriver } from "bentocache/drivers/redis"
import * as Cache from "effect/Cache"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as PrimaryKey from "effect/PrimaryKey"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import { LocalOnly, Observability } from "../src/index.js"
import * as FailClosedPersistence from "../src/Persistence.js"
import {
  effectWorkers,
  hitId,
  KEYS,
  libraryLayer,
  rawClient,
  TTL_MILLIS,
  User,
  users,
  usersKeyspace,
  waitReady
} from "./fixtures.js"
import { type Case, promiseWorkers, type Runner, type ServerCpu } from "./harness.js"

const NEAR_CAPACITY = 10_000

/** the near-miss ids cycle over three times the near cache's capacity: an LRU read in a cycle longer than it always misses */
const NEAR_MISS_KEYS = 3 * NEAR_CAPACITY
/** a side's next near-miss id; its cursor runs on across samples (a sample's `i` starts at 0 again) */
const nearMissIds = () => {
  let next = 0
  return () => KEYS + (next++ % NEAR_MISS_KEYS)
}
const valueOf = (id: number) => users[id % KEYS]!

const keyspace = usersKeyspace

const Near = keyspace("bench-near", { capacity: NEAR_CAPACITY })
/** Near's entries written without its near cache, before it opens its tracking connection (no invalidations, no refills) */
const NearFill = keyspace("bench-near")
/**
 * The CPU-bound rows' keyspace: a short `maxStaleness`, so that a 200 ms sample of near hits that never waits for I/O
 * outlives its proof several times (each lapse pauses the near hits until one read has gone to Redis), and its fill
 */
const NearCpu = keyspace("bench-near-cpu", { capacity: NEAR_CAPACITY, maxStaleness: "50 millis" })
const NearCpuFill = keyspace("bench-near-cpu")
/** the same keyspace without a near cache, holding the same entries */
const Plain = keyspace("bench-plain")
/** entries written by getOrCompute with a stale window */
const Swr = keyspace("bench-swr")

const SWR = { staleWhileRevalidate: "30 seconds" } as const
const LOCK = { lock: true } as const

class GetUser extends Schema.TaggedRequest<GetUser>()("GetUser", {
  failure: Schema.String,
  success: User,
  payload: { id: Schema.Number }
}) {
  [PrimaryKey.symbol]() {
    return `user:${this.id}`
  }
}

const requests = Array.from({ length: KEYS }, (_, id) => new GetUser({ id }))

/** inMemoryTTL 0: every `get` reads the persistence store (the in-memory layer is the same on both sides) */
const persistedCache = async <E>(layer: Layer.Layer<Persistence.ResultPersistence, E>, storeId: string) => {
  const rt = ManagedRuntime.make(layer)
  const scope = Effect.runSync(Scope.make())
  const cache = await rt.runPromise(
    Scope.extend(
      PersistedCache.make({
        storeId,
        lookup: (request: GetUser) => Effect.succeed(valueOf(request.id)),
        timeToLive: () => Duration.millis(TTL_MILLIS),
        inMemoryTTL: 0
      }),
      scope
    )
  )
  const run: Runner = effectWorkers(
    1,
    (i) => cache.get(requests[hitId(i)]!),
    (e) => rt.runPromise(e)
  )
  // the hit set
  await run(KEYS)
  return { run, close: () => Effect.runPromise(Scope.close(scope, Exit.void)).then(() => rt.dispose()) }
}

export const featureCases = async (
  url: string,
  serverCpu: ServerCpu
): Promise<{ cases: ReadonlyArray<Case>; prepare: () => Promise<void>; close: () => Promise<void> }> => {
  const { hostname, port } = new URL(url)
  const connection = { host: hostname, port: Number(port) }
  const layer = libraryLayer(url)
  const rt = ManagedRuntime.make(layer)
  type Op = (i: number) => Effect.Effect<unknown, unknown, never>
  const lib = (f: (i: number) => Effect.Effect<unknown, unknown, unknown>): Runner =>
    effectWorkers(1, f as Op, (e) => rt.runPromise(e))
  const eff = (f: (i: number) => Effect.Effect<unknown>): Runner => effectWorkers(1, f, (e) => Effect.runPromise(e))
  /** the same keyspace (Near) on LocalOnly: a near hit's target is ≥ 0.9× its hit */
  const localRt = ManagedRuntime.make(LocalOnly)
  const local = (f: (i: number) => Effect.Effect<unknown, unknown, unknown>): Runner =>
    effectWorkers(1, f as Op, (e) => localRt.runPromise(e))

  const effectCache = await Effect.runPromise(
    Cache.make({ capacity: NEAR_CAPACITY, timeToLive: TTL_MILLIS, lookup: (id: number) => Effect.succeed(users[id]!) })
  )
  const bentoRedis = rawClient(url, "default")
  const bento = new BentoCache({
    default: "cache",
    stores: {
      cache: bentostore()
        .useL1Layer(memoryDriver({ maxItems: NEAR_CAPACITY }))
        .useL2Layer(redisDriver({ connection: bentoRedis }))
        .useBus(redisBusDriver({ connection }))
    }
  })
  const closers: Array<() => Promise<void>> = [
    () => rt.dispose(),
    () => localRt.dispose(),
    () => bento.disconnectAll(),
    async () => bentoRedis.disconnect()
  ]
  const close = async () => {
    for (const c of closers.reverse()) await c()
  }
  try {
    await waitReady(bentoRedis)
    const fill = (f: (id: number) => Effect.Effect<unknown, unknown, unknown>, n: number) =>
      rt.runPromise(
        Effect.forEach(
          Array.from({ length: n }, (_, id) => id),
          f as Op,
          { concurrency: 64, discard: true }
        )
      )
    await fill((id) => NearFill.set({ id }, valueOf(id)), KEYS + NEAR_MISS_KEYS)
    await fill((id) => NearCpuFill.set({ id }, valueOf(id)), KEYS)
    await fill((id) => Plain.set({ id }, valueOf(id)), KEYS + NEAR_MISS_KEYS)
    await fill((id) => Swr.getOrCompute({ id }, Effect.succeed(valueOf(id)), SWR), KEYS)
    await eff((i) => effectCache.get(hitId(i)))(KEYS)
    await local((id) => Near.set({ id }, valueOf(id)))(KEYS)
    for (let id = 0; id < KEYS; id++) await bento.set({ key: `user:${id}`, value: users[id], ttl: TTL_MILLIS })
    const persisted = await persistedCache(
      FailClosedPersistence.layerResult().pipe(Layer.provide(libraryLayer(url))),
      "bench-persisted-failclosed"
    )
    closers.push(persisted.close)
    const experimental = await persistedCache(ExperimentalRedis.layerResult(connection), "bench-persisted-experimental")
    closers.push(experimental.close)

    // unique cold keys for the miss rows, shared by both sides
    let cold = 1_000_000
    const coldId = () => cold++
    const nearMiss = nearMissIds()
    const plainMiss = nearMissIds()
    const near = "Near cache (StrictDistributed), sequential"
    const flushesOfNearCpu = () =>
      Effect.runSync(Metric.value(Observability.nearFlushes.pipe(Metric.tagged("keyspace", "bench-near-cpu")))).count
    /** a run that must not empty the near cache (a lapse of its proof pauses it; only a loss empties it) */
    const neverEmptied =
      (run: Runner): Runner =>
      async (ops) => {
        const before = flushesOfNearCpu()
        await run(ops)
        if (flushesOfNearCpu() !== before)
          throw new Error("bench: a CPU-bound loop of near hits emptied the near cache")
      }
    const eventLoopTurn = Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))
    const goc = "getOrCompute options (StrictDistributed), sequential"
    const cases: Array<Case> = [
      {
        group: near,
        name: "get (near hit)",
        library: { label: "Keyspace, nearCache", run: lib((i) => Near.get({ id: hitId(i) })) },
        baselines: [
          {
            label: "the same keyspace on LocalOnly, hit",
            run: local((i) => Near.get({ id: hitId(i) })),
            target: { ratio: 0.9 }
          },
          { label: "effect Cache.get", run: eff((i) => effectCache.get(hitId(i))), target: { ratio: 2.0 } },
          {
            label: "bentocache L1 + L2 + bus, L1 hit",
            run: promiseWorkers(1, (i) => bento.get({ key: `user:${hitId(i)}` })),
            target: { ratio: 4.0 }
          }
        ],
        serverCpu
      },
      {
        group: near,
        name: "get (near hit), one CPU-bound fiber, maxStaleness 50 ms",
        library: {
          label: "no yield to the event loop",
          run: neverEmptied(lib((i) => NearCpu.get({ id: hitId(i) })))
        },
        baselines: [
          {
            label: "yields to the event loop every 100 reads",
            run: neverEmptied(
              lib((i) =>
                i % 100 === 99
                  ? Effect.zipRight(NearCpu.get({ id: hitId(i) }), eventLoopTurn)
                  : NearCpu.get({ id: hitId(i) })
              )
            ),
            target: { ratio: 0.9 }
          }
        ],
        serverCpu
      },
      {
        group: near,
        name: "get (near miss, in Redis)",
        library: { label: "Keyspace, nearCache", run: lib(() => Near.get({ id: nearMiss() })) },
        baselines: [
          {
            label: "Keyspace, no nearCache",
            run: lib(() => Plain.get({ id: plainMiss() })),
            target: { ratio: 0.91 }
          }
        ],
        serverCpu
      },
      {
        group: goc,
        name: "getOrCompute (hit)",
        library: {
          label: "staleWhileRevalidate 30 s",
          run: lib((i) => Swr.getOrCompute({ id: hitId(i) }, Effect.succeed(valueOf(i)), SWR))
        },
        baselines: [
          { label: "no options", run: lib((i) => Plain.getOrCompute({ id: hitId(i) }, Effect.succeed(valueOf(i)))) }
        ],
        serverCpu
      },
      {
        group: goc,
        name: "getOrCompute (miss, cold key)",
        library: {
          label: "lock: true",
          run: lib((i) => Plain.getOrCompute({ id: coldId() }, Effect.succeed(valueOf(i)), LOCK))
        },
        baselines: [
          { label: "no lock", run: lib((i) => Plain.getOrCompute({ id: coldId() }, Effect.succeed(valueOf(i)))) }
        ],
        serverCpu
      },
      {
        group: "PersistedCache (@effect/experimental), sequential",
        name: "get (hit in the store)",
        library: { label: "effect-failclosed/Persistence, StrictDistributed", run: persisted.run },
        baselines: [{ label: "@effect/experimental/Persistence/Redis", run: experimental.run }],
        serverCpu
      }
    ]
    // the first near-cache read opens the tracking connection, whose prefix Redis then checks on every write: not
    // before this section starts, so that the sections before it do not pay for it
    const prepare = async () => {
      // both near-cache keyspaces registered first: a keyspace registered later re-enables tracking, which empties
      // the near caches of the others
      await rt.runPromise(Effect.all([Near.get({ id: 0 }), NearCpu.get({ id: 0 })]))
      // the near hit set, read again until it is one (reads before the tracking connection is ready are not kept)
      for (let attempt = 0; ; attempt++) {
        await lib((i) => Near.get({ id: hitId(i) }))(KEYS)
        await lib((i) => NearCpu.get({ id: hitId(i) }))(KEYS)
        const probe = await rt.runPromise(Near.get({ id: KEYS - 1 }))
        const cpuProbe = await rt.runPromise(NearCpu.get({ id: KEYS - 1 }))
        if (Option.isSome(probe) && probe.value.near && Option.isSome(cpuProbe) && cpuProbe.value.near) return
        if (attempt === 50) throw new Error("bench: the near cache does not serve near hits")
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
    }
    return { cases, prepare, close }
  } catch (error) {
    await close()
    throw error
  }
}
