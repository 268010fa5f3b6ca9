/**
 * A LocalOnly keyspace against in-process caches: effect's own `Cache` (a lookup function,
 * `get` on a hit, `set`) and `lru-cache`, once holding the JSON text (parsed on every read, the
 * same isolation the keyspace gives: no caller can mutate what the cache holds) and once
 * holding the objects themselves (the fastest thing possible, no isolation).
 */
import * as Cache from "effect/Cache"
import * as Effect from "effect/Effect"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Option from "effect/Option"
import { LRUCache } from "lru-cache"
import { localOnly } from "../src/index.js"
import { effectWorkers, hitId, KEYS, missId, TTL_MILLIS, type User, users, Users } from "./fixtures.js"
import type { Case, Runner, Target } from "./harness.js"

/** issue 12: a LocalOnly read at least as fast as effect's `Cache.get` */
const AT_LEAST_CACHE: Target = { ratio: 1.0 }

const syncLoop =
  (body: (i: number) => unknown): Runner =>
  async (ops) => {
    for (let i = 0; i < ops; i++) body(i)
  }

export const localCases = async (): Promise<{ cases: ReadonlyArray<Case>; close: () => Promise<void> }> => {
  const rt = ManagedRuntime.make(localOnly({ capacity: 10 * KEYS }))
  const run = (e: Effect.Effect<void, unknown, never>) => rt.runPromise(e)
  type Op = (i: number) => Effect.Effect<unknown, unknown, never>
  const lib = (f: (i: number) => Effect.Effect<unknown, unknown, unknown>): Runner => effectWorkers(1, f as Op, run)

  const effectCache = await Effect.runPromise(
    Cache.make({
      capacity: 10 * KEYS,
      timeToLive: TTL_MILLIS,
      lookup: (id: number) => Effect.succeed(users[id]!)
    })
  )
  const eff = (f: (i: number) => Effect.Effect<unknown>): Runner => effectWorkers(1, f, (e) => Effect.runPromise(e))

  const lruText = new LRUCache<number, string>({ max: 10 * KEYS, ttl: TTL_MILLIS })
  const lruObject = new LRUCache<number, User>({ max: 10 * KEYS, ttl: TTL_MILLIS })

  // fill the hit sets
  await lib((i) => Users.set({ id: hitId(i) }, users[hitId(i)]!))(KEYS)
  await eff((i) => effectCache.get(hitId(i)))(KEYS)
  for (let i = 0; i < KEYS; i++) {
    lruText.set(i, JSON.stringify(users[i]))
    lruObject.set(i, users[i]!)
  }

  const compute = Effect.succeed(users[0]!)
  const group = "LocalOnly (in-process), sequential"
  const cases: Array<Case> = [
    {
      group,
      name: "get (hit)",
      library: { label: "Keyspace", run: lib((i) => Users.get({ id: hitId(i) })) },
      baselines: [
        { label: "effect Cache.get", run: eff((i) => effectCache.get(hitId(i))), target: AT_LEAST_CACHE },
        { label: "lru-cache, JSON text", run: syncLoop((i) => JSON.parse(lruText.get(hitId(i))!)) },
        { label: "lru-cache, objects", run: syncLoop((i) => lruObject.get(hitId(i))) }
      ]
    },
    {
      group,
      name: "getOrCompute (hit)",
      library: { label: "Keyspace", run: lib((i) => Users.getOrCompute({ id: hitId(i) }, compute)) },
      baselines: [{ label: "effect Cache.get", run: eff((i) => effectCache.get(hitId(i))), target: AT_LEAST_CACHE }]
    },
    {
      group,
      name: "get (miss)",
      library: { label: "Keyspace", run: lib((i) => Users.get({ id: missId(i) })) },
      baselines: [
        {
          label: "effect Cache.getOption",
          run: eff((i) => Effect.map(effectCache.getOption(missId(i)), Option.isNone))
        },
        { label: "lru-cache, JSON text", run: syncLoop((i) => lruText.get(missId(i))) }
      ]
    },
    {
      group,
      name: "set",
      library: { label: "Keyspace", run: lib((i) => Users.set({ id: hitId(i) }, users[hitId(i)]!)) },
      baselines: [
        { label: "effect Cache.set", run: eff((i) => effectCache.set(hitId(i), users[hitId(i)]!)) },
        { label: "lru-cache, JSON text", run: syncLoop((i) => lruText.set(hitId(i), JSON.stringify(users[hitId(i)]))) },
        { label: "lru-cache, objects", run: syncLoop((i) => lruObject.set(hitId(i), users[hitId(i)]!)) }
      ]
    }
  ]
  return { cases, close: () => rt.dispose() }
}
