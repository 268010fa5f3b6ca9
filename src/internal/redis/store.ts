/**
 * The Redis store: each operation is one command (or one script) with the client's
 * fail-fast settings; every error becomes a secret-free StoreFailure.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { type Cluster, Command, type Redis } from "ioredis"
import type { RateLimitDecision } from "../../DistributedCache.js"
import type { RedisClientService } from "../../RedisClient.js"
import { escapeGlob } from "../keys.js"
import { type Store, StoreFailure } from "../store.js"
import { type Done, makeCommandBatch } from "./commandBatch.js"
import { Deadlines } from "./deadlines.js"
import { redisRateLimit, releaseLockScript } from "./rateLimit.js"
import { keySlot, SLOT_COUNT } from "./slot.js"

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

/** what a command that missed its deadline settles with */
const TIMED_OUT = Symbol("timed out")

const identity = (a: unknown) => a
const asString = (reply: unknown) => reply as string | null
const asVoid = () => undefined
const asDeleted = (reply: unknown) => Number(reply) > 0
const isOk = (reply: unknown) => reply === "OK"
const asDecision = (reply: unknown) => reply as RateLimitDecision

/** bounds one command by the command timeout */
type Within = <A>(command: () => Promise<A>) => Promise<A>

const scanAndDelete = async (node: Redis, pattern: string, isCluster: boolean, bound: Within): Promise<number> => {
  let cursor = "0"
  let deleted = 0
  do {
    const [next, keys] = await bound(() => node.scan(cursor, "MATCH", pattern, "COUNT", SCAN_BATCH))
    cursor = next
    if (keys.length > 0) {
      if (isCluster) {
        // keys of different slots cannot share one command in a cluster
        const pipeline = node.pipeline()
        for (const k of keys) pipeline.unlink(k)
        const results = (await bound(() => pipeline.exec())) ?? []
        for (const [err, n] of results) {
          if (err) throw err
          deleted += Number(n)
        }
      } else {
        deleted += await bound(() => node.unlink(...keys))
      }
    }
  } while (cursor !== "0")
  return deleted
}

/** SCAN may return a key more than once: count distinct keys */
const scanAndCount = async (node: Redis, pattern: string, bound: Within): Promise<number> => {
  let cursor = "0"
  const seen = new Set<string>()
  do {
    const [next, keys] = await bound(() => node.scan(cursor, "MATCH", pattern, "COUNT", SCAN_BATCH))
    cursor = next
    for (const k of keys) seen.add(k)
  } while (cursor !== "0")
  return seen.size
}

const isCluster = (client: Redis | Cluster): client is Cluster => (client as Cluster).isCluster === true

const CLUSTER_SLOTS = SLOT_COUNT

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

/**
 * The failure domains of a cluster: the slot ranges of its shards (`slots 0-5460`), taken from the client's slot map
 * and recomputed when ioredis replaces it. A failover keeps the ranges, so a domain's label, and its cooldown,
 * survive the promotion of a replica. `""` (the whole store) while the slot map is not known yet.
 */
const clusterDomains = (client: Cluster): ((key: string) => string) => {
  let seen: Array<ReadonlyArray<string> | undefined> = []
  let labels: Array<string> = []
  const rebuild = () => {
    const slots = client.slots
    seen = new Array(CLUSTER_SLOTS)
    labels = new Array(CLUSTER_SLOTS)
    let start = 0
    for (let slot = 0; slot <= CLUSTER_SLOTS; slot++) {
      const owner = slot < CLUSTER_SLOTS ? slots[slot]?.[0] : undefined
      if (slot === CLUSTER_SLOTS || owner !== slots[start]?.[0]) {
        const label = slots[start]?.[0] === undefined ? "" : `slots ${start}-${slot - 1}`
        for (let s = start; s < slot; s++) labels[s] = label
        start = slot
      }
      if (slot < CLUSTER_SLOTS) seen[slot] = slots[slot]
    }
  }
  return (key) => {
    const slot = keySlot(key)
    const owners = client.slots[slot]
    if (owners === undefined) return ""
    if (seen[slot] !== owners) rebuild()
    return labels[slot] ?? ""
  }
}

/** runs `f` on every master at once and adds the results; any failure fails the whole */
const onEveryMaster = async (client: Cluster, f: (node: Redis) => Promise<number>): Promise<number> => {
  const counts = await Promise.all(clusterMasters(client).map(f))
  return counts.reduce((a, b) => a + b, 0)
}

/** @internal */
export interface RedisStoreOptions {
  /** claims and rate-limit decisions wait (`WAIT`) for this many replicas, and fail closed when fewer acknowledge */
  readonly waitForReplicas?: number | undefined
  /** the `WAIT` timeout, less than the command timeout */
  readonly replicaTimeoutMillis?: number | undefined
}

/** @internal */
export const makeRedisStore = (redis: RedisClientService, options: RedisStoreOptions = {}): Store => {
  const client = redis.client
  const fail = toStoreFailure(redis.describeError)
  const deadline = Duration.toMillis(redis.commandTimeout)
  const timedOut = new StoreFailure("unavailable", "timeout")
  const deadlines = new Deadlines(deadline)
  /**
   * Sends one command, bounded by the command timeout from the moment it is made, and settles once: with its reply,
   * its error or {@link TIMED_OUT}. ioredis starts a command's timer only when it writes the command, and with
   * auto-pipelining a command waits unwritten, without a timer, while the previous pipeline is in flight: on a silent
   * Redis a call would otherwise take up to twice the command timeout. The deadline is judged after the poll phase
   * that follows it (see {@link Deadlines}).
   */
  const bound = (send: () => Promise<unknown>, settle: Done): void => {
    const pending = deadlines.add(() => settle(TIMED_OUT, undefined))
    const finish = (error: unknown, reply: unknown) => {
      if (pending.settled) return
      pending.settled = true
      settle(error, reply)
    }
    try {
      send().then(
        (reply) => finish(undefined, reply),
        (error: unknown) => finish(error ?? new Error("rejected"), undefined)
      )
    } catch (error) {
      finish(error ?? new Error("rejected"), undefined)
    }
  }
  const failureOf = (error: unknown): StoreFailure => (error === TIMED_OUT ? timedOut : fail(error))
  /** one call as an Effect: no canceler (an interrupted fiber ignores a late reply; the call's deadline ends it) */
  const call = <A>(send: (done: Done) => void, map: (reply: unknown) => A): Effect.Effect<A, StoreFailure> =>
    Effect.async<A, StoreFailure>((resume) =>
      send((error, reply) => {
        if (error !== undefined) return resume(Effect.fail(failureOf(error)))
        let a: A
        try {
          a = map(reply)
        } catch (defect) {
          return resume(Effect.die(defect))
        }
        resume(Effect.succeed(a))
      })
    )
  const attempt = <A>(f: () => Promise<A>): Effect.Effect<A, StoreFailure> =>
    call((done) => bound(f, done), identity as (reply: unknown) => A)
  /** several commands (SCAN batches), each bounded by the command timeout */
  const one: Within = <A>(command: () => Promise<A>) =>
    new Promise<A>((resolve, reject) =>
      bound(command, (error, reply) => (error === undefined ? resolve(reply as A) : reject(error)))
    )
  const attemptAll = <A>(f: (bound: Within) => Promise<A>): Effect.Effect<A, StoreFailure> =>
    Effect.tryPromise({ try: () => f(one), catch: failureOf })

  const replicas = options.waitForReplicas ?? 0
  const replicaTimeout = options.replicaTimeoutMillis ?? Math.max(1, Math.floor(deadline / 2))
  /** the connection a key's commands go to: in a cluster, the master of its slot */
  const connectionOf = (key: string): string => (isCluster(client) ? (client.slots[keySlot(key)]?.[0] ?? "") : "")
  /**
   * `WAIT` on the connection that carried the write to `key`: it counts the replicas that acknowledged every write
   * this connection sent before it (a keyless command in a cluster would go to any node, hence the slot).
   */
  const sendWait = (key: string): Promise<unknown> =>
    isCluster(client)
      ? (client.sendCommand(new Command("wait", [replicas, replicaTimeout]), undefined, {
          slot: keySlot(key)
        }) as Promise<unknown>)
      : client.wait(replicas, replicaTimeout)
  /**
   * WAIT blocks the connection it is sent on, so the writes that were answered in one turn of the event loop share
   * one WAIT (sent after all of them, it covers them all) instead of queueing one each.
   */
  const pendingWaits = new Map<string, Promise<number>>()
  const waitFor = (key: string, connection: string): Promise<number> => {
    let pending = pendingWaits.get(connection)
    if (pending === undefined) {
      pending = new Promise<number>((resolve, reject) =>
        setImmediate(() => {
          pendingWaits.delete(connection)
          sendWait(key).then((n) => resolve(Number(n)), reject)
        })
      )
      pendingWaits.set(connection, pending)
    }
    return pending
  }
  const notReplicated = (acked: number) =>
    new StoreFailure(
      "rejected",
      acked < 0
        ? "the key's slot moved to another master during the call; failing closed"
        : `only ${acked} of ${replicas} replica(s) acknowledged within ${replicaTimeout} ms; failing closed`
    )
  /** the write, then WAIT, within one command timeout; fewer acknowledgements than asked fail closed */
  const replicated = <A>(key: string, write: () => Promise<A>): Effect.Effect<A, StoreFailure> =>
    replicas === 0
      ? attempt(write)
      : Effect.flatMap(
          attempt(async () => {
            const connection = connectionOf(key)
            const a = await write()
            const acked = await waitFor(key, connection)
            // a write and a WAIT that reached different masters prove nothing
            return [a, connectionOf(key) === connection ? acked : -1] as const
          }),
          ([a, acked]) => (acked >= replicas ? Effect.succeed(a) : Effect.fail(notReplicated(acked)))
        )

  /** single node and Sentinel: the GET, SET and UNLINK calls of one tick share one command */
  const batch = isCluster(client) ? undefined : makeCommandBatch(client, bound)

  return {
    backend: "redis",
    domainOf: isCluster(client) ? clusterDomains(client) : undefined,
    ping: attempt(() => client.ping()).pipe(Effect.asVoid),
    get:
      batch === undefined
        ? (key) => attempt(() => client.get(key))
        : (key) => call((done) => batch.get(key, done), asString),
    set:
      batch === undefined
        ? (key, value, ttlMillis) =>
            attempt(() =>
              ttlMillis === undefined ? client.set(key, value) : client.set(key, value, "PX", ttlMillis)
            ).pipe(Effect.asVoid)
        : (key, value, ttlMillis) => call((done) => batch.set(key, value, ttlMillis, done), asVoid),
    invalidate:
      batch === undefined
        ? (key) =>
            Effect.map(
              attempt(() => client.unlink(key)),
              (n) => n > 0
            )
        : (key) => call((done) => batch.invalidate(key, done), asDeleted),
    clear: (prefix) =>
      attemptAll(async (bound) => {
        const pattern = escapeGlob(prefix) + "*"
        if (isCluster(client)) return onEveryMaster(client, (node) => scanAndDelete(node, pattern, true, bound))
        return scanAndDelete(client, pattern, false, bound)
      }),
    count: (prefix) =>
      attemptAll(async (bound) => {
        const pattern = escapeGlob(prefix) + "*"
        if (isCluster(client)) return onEveryMaster(client, (node) => scanAndCount(node, pattern, bound))
        return scanAndCount(client, pattern, bound)
      }),
    // with WAIT for replicas, a claim or a decision is followed by its own WAIT: those are not batched
    claim:
      batch === undefined || replicas > 0
        ? (key, ttlMillis) =>
            Effect.map(
              replicated(key, () => client.set(key, "1", "PX", ttlMillis, "NX")),
              (r) => r === "OK"
            )
        : (key, ttlMillis) => call((done) => batch.claim(key, ttlMillis, done), isOk),
    rateLimit:
      batch === undefined || replicas > 0
        ? (request) => replicated(request.key, () => redisRateLimit(client, request))
        : (request) => call((done) => batch.rateLimit(request, done), asDecision),
    acquireLock: (key, token, ttlMillis) =>
      Effect.map(
        attempt(() => client.set(key, token, "PX", ttlMillis, "NX")),
        (r) => r === "OK"
      ),
    releaseLock: (key, token) =>
      Effect.map(
        attempt(() => releaseLockScript(client, key, token)),
        (n) => n === 1
      ),
    reset: Effect.void
  }
}
