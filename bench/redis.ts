/**
 * Keyspace operations against Redis (the public `strictDistributed()` Layer over
 * `RedisClient.layer`) versus raw ioredis with the same client options: the raw side builds
 * its key with string concatenation and does JSON.parse / JSON.stringify, as an application
 * using ioredis directly would.
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import type { Redis } from "ioredis"
import { RedisClient, strictDistributed } from "../src/index.js"
import {
  COMMAND_TIMEOUT,
  effectWorkers,
  goneId,
  hitId,
  KEYS,
  missId,
  rawClient,
  rawKey,
  TTL_MILLIS,
  users,
  Users,
  waitReady
} from "./fixtures.js"
import { type Case, promiseWorkers, type Runner } from "./harness.js"

export interface RedisSides {
  readonly cases: ReadonlyArray<Case>
  readonly close: () => Promise<void>
}

const libraryRuntime = (url: string, enableAutoPipelining: boolean) =>
  ManagedRuntime.make(
    strictDistributed().pipe(
      Layer.provide(RedisClient.layer({ url, enableAutoPipelining, commandTimeout: COMMAND_TIMEOUT }))
    )
  )

type LibraryRuntime = ReturnType<typeof libraryRuntime>

const compute = Effect.succeed(users[0]!)

/** the five operations, library side */
const libraryOps = (rt: LibraryRuntime, inFlight: number) => {
  const run = (e: Effect.Effect<void, unknown, never>) => rt.runPromise(e)
  const w = (body: (i: number) => Effect.Effect<unknown, unknown, never>): Runner => effectWorkers(inFlight, body, run)
  // the DistributedCache requirement is satisfied by the runtime
  type Op = (i: number) => Effect.Effect<unknown, unknown, never>
  const provided = (f: (i: number) => Effect.Effect<unknown, unknown, unknown>) => f as Op
  return {
    getHit: w(provided((i) => Users.get({ id: hitId(i) }))),
    getMiss: w(provided((i) => Users.get({ id: missId(i) }))),
    set: w(provided((i) => Users.set({ id: hitId(i) }, users[hitId(i)]!))),
    getOrCompute: w(provided((i) => Users.getOrCompute({ id: hitId(i) }, compute))),
    invalidate: w(provided((i) => Users.invalidate({ id: goneId(i) })))
  }
}

/** the same five operations with ioredis */
const rawOps = (client: Redis, inFlight: number) => {
  const w = (body: (i: number) => Promise<unknown>) => promiseWorkers(inFlight, body)
  const read = async (id: number) => {
    const raw = await client.get(rawKey(id))
    return raw === null ? undefined : (JSON.parse(raw) as unknown)
  }
  return {
    getHit: w((i) => read(hitId(i))),
    getMiss: w((i) => read(missId(i))),
    set: w((i) => client.set(rawKey(hitId(i)), JSON.stringify(users[hitId(i)]), "PX", TTL_MILLIS)),
    getOrCompute: w((i) => read(hitId(i))),
    invalidate: w((i) => client.unlink(rawKey(goneId(i))))
  }
}

const OPS = [
  ["getHit", "get (hit)"],
  ["getMiss", "get (miss)"],
  ["set", "set"],
  ["getOrCompute", "getOrCompute (hit)"],
  ["invalidate", "invalidate"]
] as const

export const redisCases = async (url: string): Promise<RedisSides> => {
  const runtimes = { on: libraryRuntime(url, true), off: libraryRuntime(url, false) }
  const clients = { on: rawClient(url, true), off: rawClient(url, false) }
  await Promise.all([waitReady(clients.on), waitReady(clients.off)])
  // building the runtimes runs the startup probe
  await Promise.all([runtimes.on.runtime(), runtimes.off.runtime()])

  // the hit set exists on both sides
  await Promise.all([libraryOps(runtimes.on, 64).set(KEYS), rawOps(clients.on, 64).set(KEYS)])

  const cases: Array<Case> = []
  const configs = [
    { inFlight: 1, ap: "off", label: "sequential, auto-pipelining off", target: 0.9 },
    { inFlight: 1, ap: "on", label: "sequential, auto-pipelining on", target: 0.9 },
    { inFlight: 256, ap: "off", label: "256 in flight, auto-pipelining off", target: undefined },
    { inFlight: 256, ap: "on", label: "256 in flight, auto-pipelining on", target: 0.85 }
  ] as const
  for (const config of configs) {
    const lib = libraryOps(runtimes[config.ap], config.inFlight)
    const raw = rawOps(clients[config.ap], config.inFlight)
    for (const [op, name] of OPS) {
      cases.push({
        group: `Redis, ${config.label}`,
        name,
        library: { label: "Keyspace", run: lib[op] },
        baselines: [{ label: "raw ioredis", run: raw[op] }],
        target: config.target
      })
    }
  }

  // does auto-pipelining win? the library's default (on) against the same library with it off
  for (const inFlight of [1, 256]) {
    cases.push({
      group: "Auto-pipelining (library default on vs off)",
      name: `get (hit), ${inFlight === 1 ? "sequential" : `${inFlight} in flight`}`,
      library: { label: "Keyspace, auto-pipelining on", run: libraryOps(runtimes.on, inFlight).getHit },
      baselines: [
        { label: "Keyspace, auto-pipelining off", run: libraryOps(runtimes.off, inFlight).getHit },
        { label: "raw ioredis, auto-pipelining off", run: rawOps(clients.off, inFlight).getHit }
      ]
    })
  }

  return {
    cases,
    close: async () => {
      await Promise.all([runtimes.on.dispose(), runtimes.off.dispose()])
      clients.on.disconnect()
      clients.off.disconnect()
    }
  }
}

/** the Redis server's version, read by a raw client */
export const redisVersion = async (url: string): Promise<string> => {
  const client = rawClient(url, false)
  try {
    await waitReady(client)
    const info = await client.info("server")
    return /redis_version:([^\r\n]+)/.exec(info)?.[1] ?? "?"
  } finally {
    client.disconnect()
  }
}
