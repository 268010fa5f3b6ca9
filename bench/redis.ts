/**
 * Keyspace operations against Redis (the public `strictDistributed()` Layer over
 * `RedisClient.layer` with its defaults) versus raw ioredis as users get it: sequential rows
 * against `new Redis(url)` (auto-pipelining off, ioredis' default), rows with 256 in flight
 * against `new Redis(url, { enableAutoPipelining: true })`. The raw side builds its key with
 * string concatenation and does JSON.parse / JSON.stringify, as an application using ioredis
 * directly would. Every row also reports redis-server's CPU per operation.
 */
import * as Effect from "effect/Effect"
import * as ManagedRuntime from "effect/ManagedRuntime"
import type { Redis } from "ioredis"
import {
  concurrency,
  effectFloor,
  effectWorkers,
  goneId,
  hitId,
  KEYS,
  libraryLayer,
  missId,
  rawClient,
  rawKey,
  rawKindFor,
  TTL_MILLIS,
  users,
  Users,
  waitReady
} from "./fixtures.js"
import { type Case, promiseWorkers, type Runner, type ServerCpu, type Side, type Target } from "./harness.js"

export interface RedisSides {
  readonly cases: ReadonlyArray<Case>
  readonly close: () => Promise<void>
}

/**
 * Issue 19: ≥ 0.95× the Effect floor (the same ioredis call in a bare `Effect.async`), sequential over ioredis' default
 * client and with 256 in flight over its auto-pipelined one; with 256 in flight Redis CPU per op ≤ 1.15× the floor's
 * (which sends raw ioredis' commands). The raw ioredis rows carry no target: they show what the floor itself costs.
 */
export const SEQUENTIAL_TARGET: Target = { ratio: 0.95 }
export const IN_FLIGHT_TARGET: Target = { ratio: 0.95, redisCpu: 1.15 }
export const targetFor = (inFlight: number): Target => (inFlight === 1 ? SEQUENTIAL_TARGET : IN_FLIGHT_TARGET)

/** the two baselines of a Redis row: the Effect floor (with the target) and raw ioredis (reported) */
export const redisBaselines = (
  inFlight: number,
  rawLabel: string,
  body: (i: number) => Promise<unknown>,
  rawRun: Runner
): Array<Side> => [
  { label: `Effect floor: Effect.async(${rawLabel})`, run: effectFloor(inFlight, body), target: targetFor(inFlight) },
  { label: rawLabel, run: rawRun }
]

const libraryRuntime = (url: string) => ManagedRuntime.make(libraryLayer(url))

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

/** the same five operations with ioredis: GET, GET, SET PX, GET-or-SET PX (a hit: the GET), UNLINK */
const rawBodies = (client: Redis) => {
  const read = async (id: number) => {
    const raw = await client.get(rawKey(id))
    return raw === null ? undefined : (JSON.parse(raw) as unknown)
  }
  const write = (id: number) => client.set(rawKey(id), JSON.stringify(users[id]), "PX", TTL_MILLIS)
  const getOrSet = async (id: number) => {
    const found = await read(id)
    if (found !== undefined) return found
    await write(id)
    return users[id]
  }
  return {
    getHit: (i: number) => read(hitId(i)),
    getMiss: (i: number) => read(missId(i)),
    set: (i: number) => write(hitId(i)),
    getOrCompute: (i: number) => getOrSet(hitId(i)),
    invalidate: (i: number) => client.unlink(rawKey(goneId(i)))
  }
}

const rawOps = (client: Redis, inFlight: number) => {
  const bodies = rawBodies(client)
  const w = (body: (i: number) => Promise<unknown>) => promiseWorkers(inFlight, body)
  return {
    getHit: w(bodies.getHit),
    getMiss: w(bodies.getMiss),
    set: w(bodies.set),
    getOrCompute: w(bodies.getOrCompute),
    invalidate: w(bodies.invalidate)
  }
}

const OPS = [
  ["getHit", "get (hit)"],
  ["getMiss", "get (miss)"],
  ["set", "set"],
  ["getOrCompute", "getOrCompute (hit)"],
  ["invalidate", "invalidate"]
] as const

export const redisCases = async (url: string, serverCpu: ServerCpu): Promise<RedisSides> => {
  const runtime = libraryRuntime(url)
  const clients = { default: rawClient(url, "default"), "auto-pipelined": rawClient(url, "auto-pipelined") }
  const close = async () => {
    await runtime.dispose()
    clients.default.disconnect()
    clients["auto-pipelined"].disconnect()
  }
  try {
    await Promise.all([waitReady(clients.default), waitReady(clients["auto-pipelined"])])
    // building the runtime runs the startup probe
    await runtime.runtime()
    // the hit set exists on both sides
    await Promise.all([libraryOps(runtime, 64).set(KEYS), rawOps(clients["auto-pipelined"], 64).set(KEYS)])
  } catch (error) {
    await close()
    throw error
  }

  const cases: Array<Case> = []
  for (const inFlight of [1, 256]) {
    const kind = rawKindFor(inFlight)
    const lib = libraryOps(runtime, inFlight)
    const raw = rawOps(clients[kind], inFlight)
    const bodies = rawBodies(clients[kind])
    for (const [op, name] of OPS) {
      cases.push({
        group: `Redis, ${concurrency(inFlight)}`,
        name,
        library: { label: "Keyspace", run: lib[op] },
        baselines: redisBaselines(inFlight, `raw ioredis (${kind})`, bodies[op], raw[op]),
        serverCpu
      })
    }
  }
  return { cases, close }
}

/** the Redis server's version, read by a raw client */
export const redisVersion = async (url: string): Promise<string> => {
  const client = rawClient(url, "default")
  try {
    await waitReady(client)
    const info = await client.info("server")
    return /redis_version:([^\r\n]+)/.exec(info)?.[1] ?? "?"
  } finally {
    client.disconnect()
  }
}
