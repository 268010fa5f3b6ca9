/**
 * The Redis store: each operation is one command (or one script) with the client's
 * fail-fast settings; every error becomes a secret-free StoreFailure.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type { Cluster, Redis } from "ioredis"
import type { RedisClientService } from "../RedisClient.js"
import { escapeGlob } from "./keys.js"
import { redisRateLimit } from "./redisRateLimit.js"
import { StoreFailure, type Store } from "./store.js"

/** Reply errors that mean "not available right now" rather than "refused this command". */
const UNAVAILABLE_REPLY = /^(LOADING|BUSY|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|READONLY|NOAUTH|WRONGPASS|NOREPLICAS)\b/

/** @internal */
export const toStoreFailure =
  (describe: (e: unknown) => string) =>
  (error: unknown): StoreFailure => {
    const reason = describe(error)
    const isReply = error instanceof Error && error.name === "ReplyError"
    return new StoreFailure(isReply && !UNAVAILABLE_REPLY.test(reason) ? "rejected" : "unavailable", reason)
  }

const SCAN_BATCH = 500

const scanAndDelete = async (node: Redis, pattern: string, isCluster: boolean): Promise<number> => {
  let cursor = "0"
  let deleted = 0
  do {
    const [next, keys] = await node.scan(cursor, "MATCH", pattern, "COUNT", SCAN_BATCH)
    cursor = next
    if (keys.length > 0) {
      if (isCluster) {
        // keys of different slots cannot share one command in a cluster
        const pipeline = node.pipeline()
        for (const k of keys) pipeline.unlink(k)
        const results = (await pipeline.exec()) ?? []
        for (const [err, n] of results) {
          if (err) throw err
          deleted += Number(n)
        }
      } else {
        deleted += await node.unlink(...keys)
      }
    }
  } while (cursor !== "0")
  return deleted
}

/** SCAN may return a key more than once: count distinct keys */
const scanAndCount = async (node: Redis, pattern: string): Promise<number> => {
  let cursor = "0"
  const seen = new Set<string>()
  do {
    const [next, keys] = await node.scan(cursor, "MATCH", pattern, "COUNT", SCAN_BATCH)
    cursor = next
    for (const k of keys) seen.add(k)
  } while (cursor !== "0")
  return seen.size
}

const isCluster = (client: Redis | Cluster): client is Cluster => (client as Cluster).isCluster === true

const CLUSTER_SLOTS = 16384

/**
 * The connections to the masters that own the 16384 slots, from the client's slot map. A prefix scan that skipped a
 * master would report success for a partial clear (or count), so this fails unless every slot has an owner and every
 * owner is connected: after a failover the slot map is refreshed first, and a later call succeeds.
 */
const clusterMasters = (client: Cluster): Array<Redis> => {
  const connections = new Map<string, Redis>()
  for (const node of client.nodes("all")) connections.set(`${node.options.host}:${node.options.port}`, node)
  const owners = new Set<string>()
  for (let slot = 0; slot < CLUSTER_SLOTS; slot++) {
    const owner = client.slots[slot]?.[0]
    if (owner === undefined) throw new Error("the cluster slot map does not cover every slot")
    owners.add(owner)
  }
  return Array.from(owners, (owner) => {
    const node = connections.get(owner)
    if (node === undefined || node.status === "end" || node.status === "close") {
      throw new Error("a cluster master is not connected")
    }
    return node
  })
}

/** runs `f` on every master at once and adds the results; any failure fails the whole */
const onEveryMaster = async (client: Cluster, f: (node: Redis) => Promise<number>): Promise<number> => {
  const counts = await Promise.all(clusterMasters(client).map(f))
  return counts.reduce((a, b) => a + b, 0)
}

/** @internal */
export const makeRedisStore = (redis: RedisClientService): Store => {
  const client = redis.client
  const fail = toStoreFailure(redis.describeError)
  const deadline = Duration.toMillis(redis.commandTimeout)
  const timedOut = new StoreFailure("unavailable", "timeout")
  /**
   * One call, bounded by the command timeout from the moment it is made. ioredis starts a
   * command's timer only when it writes the command, and with auto-pipelining a command waits
   * unwritten, without a timer, while the previous pipeline is in flight: on a silent Redis a
   * call would otherwise take up to twice the command timeout.
   */
  const attempt = <A>(f: () => Promise<A>): Effect.Effect<A, StoreFailure> =>
    Effect.async<A, StoreFailure>((resume) => {
      let settled = false
      const timer = setTimeout(() => {
        settled = true
        resume(Effect.fail(timedOut))
      }, deadline)
      const settle = (result: Effect.Effect<A, StoreFailure>) => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        resume(result)
      }
      try {
        f().then(
          (a) => settle(Effect.succeed(a)),
          (e) => settle(Effect.fail(fail(e)))
        )
      } catch (e) {
        settle(Effect.fail(fail(e)))
      }
      return Effect.sync(() => {
        settled = true
        clearTimeout(timer)
      })
    })
  /** several commands (SCAN batches), each bounded by ioredis' command timeout */
  const attemptAll = <A>(f: () => Promise<A>): Effect.Effect<A, StoreFailure> =>
    Effect.tryPromise({ try: f, catch: fail })

  return {
    backend: "redis",
    ping: attempt(() => client.ping()).pipe(Effect.asVoid),
    get: (key) => attempt(() => client.get(key)),
    set: (key, value, ttlMillis) =>
      attempt(() => (ttlMillis === undefined ? client.set(key, value) : client.set(key, value, "PX", ttlMillis))).pipe(
        Effect.asVoid
      ),
    delete: (key) =>
      Effect.map(
        attempt(() => client.unlink(key)),
        (n) => n > 0
      ),
    clear: (prefix) =>
      attemptAll(async () => {
        const pattern = escapeGlob(prefix) + "*"
        if (isCluster(client)) return onEveryMaster(client, (node) => scanAndDelete(node, pattern, true))
        return scanAndDelete(client, pattern, false)
      }),
    count: (prefix) =>
      attemptAll(async () => {
        const pattern = escapeGlob(prefix) + "*"
        if (isCluster(client)) return onEveryMaster(client, (node) => scanAndCount(node, pattern))
        return scanAndCount(client, pattern)
      }),
    claim: (key, ttlMillis) =>
      Effect.map(
        attempt(() => client.set(key, "1", "PX", ttlMillis, "NX")),
        (r) => r === "OK"
      ),
    rateLimit: (request) => attempt(() => redisRateLimit(client, request)),
    reset: Effect.void
  }
}
