/**
 * The Redis store: each operation is one plain command (or one script), sent by the {@link Sender} (one deadline per
 * call, the commands of a tick written together), and every error becomes a secret-free StoreFailure. An operation
 * takes a callback ({@link Done}) and calls it once: no Promise per call on the hot path (a get is one command, one
 * deadline object and the callbacks `bound` settles), so a wrapper makes each call one `Effect.async` and nothing
 * more.
 */
import { type Cluster, Command, type Redis } from "ioredis"
import { escapeGlob } from "../keys.js"
import { getMany, setMany } from "../batch.js"
import { type Done, type RateLimitRequest, type RedisStore, StoreFailure } from "../store.js"
import { clusterDomains, clusterMasters, isCluster, keySlot } from "./cluster.js"
import { evalScript, RELEASE_LOCK, scriptOf, toDecision } from "./scripts.js"
import { makeSender, TIMED_OUT } from "./send.js"

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

/**
 * Keys SCAN looks at per call. Larger than Redis' default (10): a prefix scan of a database of N keys costs N / COUNT
 * round trips, and a round trip, not the scan, is what a busy machine makes slow.
 */
const SCAN_COUNT = 1000

/** a whole-store operation: several commands, each bounded by the command timeout */
type Bounded = <A>(send: () => Promise<A>) => Promise<A>

const scanAndDelete = async (node: Redis, pattern: string, cluster: boolean, bounded: Bounded): Promise<number> => {
  let cursor = "0"
  let deleted = 0
  do {
    const [next, keys] = await bounded(() => node.scan(cursor, "MATCH", pattern, "COUNT", SCAN_COUNT))
    cursor = next
    if (keys.length === 0) continue
    if (!cluster) {
      deleted += await bounded(() => node.unlink(...keys))
      continue
    }
    // keys of different slots cannot share one command in a cluster: one UNLINK per slot, in one pipeline
    const bySlot = new Map<number, Array<string>>()
    for (const key of keys) {
      const slot = keySlot(key)
      const group = bySlot.get(slot)
      if (group === undefined) bySlot.set(slot, [key])
      else group.push(key)
    }
    const pipeline = node.pipeline()
    for (const group of bySlot.values()) pipeline.unlink(...group)
    for (const [error, n] of (await bounded(() => pipeline.exec())) ?? []) {
      if (error) throw error
      deleted += Number(n)
    }
  } while (cursor !== "0")
  return deleted
}

/** SCAN may return a key more than once: count distinct keys */
const scanAndCount = async (node: Redis, pattern: string, bounded: Bounded): Promise<number> => {
  let cursor = "0"
  const seen = new Set<string>()
  do {
    const [next, keys] = await bounded(() => node.scan(cursor, "MATCH", pattern, "COUNT", SCAN_COUNT))
    cursor = next
    for (const k of keys) seen.add(k)
  } while (cursor !== "0")
  return seen.size
}

/** runs `f` on every master at once and adds the results; any failure fails the whole */
const onEveryNode = async (client: Redis | Cluster, f: (node: Redis, cluster: boolean) => Promise<number>) => {
  if (!isCluster(client)) return f(client, false)
  const counts = await Promise.all(clusterMasters(client).map((node) => f(node, true)))
  return counts.reduce((a, b) => a + b, 0)
}

/** @internal */
export interface RedisStoreOptions {
  /** every command's deadline */
  readonly commandTimeoutMillis: number
  /** a driver or reply error as one secret-free line (the client's scrubber) */
  readonly describeError: (error: unknown) => string
  /** claims and rate-limit decisions wait (`WAIT`) for this many replicas, and fail closed when fewer acknowledge */
  readonly waitForReplicas?: number | undefined
  /** the `WAIT` timeout, less than the command timeout */
  readonly replicaTimeoutMillis?: number | undefined
}

const asString = (reply: unknown) => reply as string | null
const asVoid = () => undefined
const asValues = (reply: unknown) => reply as ReadonlyArray<string | null>
const asDeleted = (reply: unknown) => Number(reply) > 0
const isOk = (reply: unknown) => reply === "OK"
const isOne = (reply: unknown) => Number(reply) === 1

/** what a failed call passes as its (meaningless) value */
const NONE = undefined as never

/** @internal */
export const makeRedisStore = (client: Redis | Cluster, options: RedisStoreOptions): RedisStore => {
  const fail = toStoreFailure(options.describeError)
  const commandTimeout = options.commandTimeoutMillis
  const sender = makeSender(client, commandTimeout)
  const timedOut = new StoreFailure("unavailable", "timeout")
  const failureOf = (error: unknown): StoreFailure => (error === TIMED_OUT ? timedOut : fail(error))
  const unexpected = (error: unknown) =>
    new StoreFailure("rejected", `unexpected reply (${error instanceof Error ? error.message : "not an Error"})`)

  /** one call: `send` bounded by the deadline, its reply mapped; a reply `map` refuses fails closed, never throws */
  const call = <A>(send: () => Promise<unknown>, map: (reply: unknown) => A, done: Done<A>): void =>
    sender.bound(send, (error, reply) => {
      if (error !== undefined) return done(failureOf(error), NONE)
      let a: A
      try {
        a = map(reply)
      } catch (e) {
        return done(unexpected(e), NONE)
      }
      done(undefined, a)
    })
  const command = <A>(name: string, args: ReadonlyArray<string | number>, map: (reply: unknown) => A, done: Done<A>) =>
    call(() => sender.command(name, args), map, done)
  /** clear and count: several commands, each bounded by the command timeout */
  const bounded: Bounded = <A>(send: () => Promise<A>) =>
    new Promise<A>((resolve, reject) =>
      sender.bound(send, (error: unknown, reply: unknown) =>
        error === undefined ? resolve(reply as A) : reject(error)
      )
    )
  const wholeStore = (f: (node: Redis, cluster: boolean) => Promise<number>, done: Done<number>) => {
    onEveryNode(client, f).then(
      (n) => done(undefined, n),
      (error: unknown) => done(failureOf(error), NONE)
    )
  }

  // --- WAIT for replicas (claims and decisions, when asked) -------------------------------------------------------

  const replicas = options.waitForReplicas ?? 0
  const replicaTimeout = options.replicaTimeoutMillis ?? Math.max(1, Math.floor(commandTimeout / 2))
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
  /** the write, then (when asked) WAIT, within one command timeout; fewer acknowledgements than asked fail closed */
  const replicated = <A>(key: string, write: () => Promise<unknown>, map: (reply: unknown) => A, done: Done<A>) =>
    replicas === 0
      ? call(write, map, done)
      : call(
          async () => {
            const connection = connectionOf(key)
            const reply = await write()
            const acked = await waitFor(key, connection)
            // a write and a WAIT that reached different masters prove nothing
            return [reply, connectionOf(key) === connection ? acked : -1] as const
          },
          (result) => {
            const [reply, acked] = result as readonly [unknown, number]
            return [map(reply), acked] as const
          },
          (failure, result) => {
            if (failure !== undefined) return done(failure, NONE)
            const [a, acked] = result
            if (acked >= replicas) done(undefined, a)
            else done(notReplicated(acked), NONE)
          }
        )

  const decide = (request: RateLimitRequest) => {
    const script = scriptOf(request.algorithm)
    const keys = request.algorithm === "sliding-window" ? [request.key + ":l", request.key + ":m"] : [request.key]
    return () => evalScript(sender.command, script, keys, [request.limit, request.windowMillis, request.cost])
  }

  return {
    backend: "redis",
    domainOf: isCluster(client) ? clusterDomains(client) : undefined,
    ping: (done) => command("ping", [], asVoid, done),
    get: (key, done) => command("get", [key], asString, done),
    set: (key, value, ttlMillis, done) =>
      command("set", ttlMillis === undefined ? [key, value] : [key, value, "PX", ttlMillis], asVoid, done),
    // one MGET per node (a Cluster: one script per master) instead of one GET per key: 100 keys cost Redis 0.35 µs
    // of CPU per key instead of 13 µs (docs/tags-and-batches.md)
    getMany: (keys, done) => call(() => getMany(client, keys, keySlot), asValues, done),
    // one pipeline of SET PX per node: 1.1 µs of Redis CPU per key instead of 13 µs for sequential SETs
    setMany: (entries, done) => call(() => setMany(client, entries, keySlot), asVoid, done),
    invalidate: (key, done) => command("unlink", [key], asDeleted, done),
    clear: (prefix, done) => {
      const pattern = escapeGlob(prefix) + "*"
      wholeStore((node, cluster) => scanAndDelete(node, pattern, cluster, bounded), done)
    },
    count: (prefix, done) => {
      const pattern = escapeGlob(prefix) + "*"
      wholeStore((node) => scanAndCount(node, pattern, bounded), done)
    },
    claim: (key, ttlMillis, done) =>
      replicated(key, () => sender.command("set", [key, "1", "PX", ttlMillis, "NX"]), isOk, done),
    rateLimit: (request, done) => replicated(request.key, decide(request), toDecision, done),
    acquireLock: (key, token, ttlMillis, done) => command("set", [key, token, "PX", ttlMillis, "NX"], isOk, done),
    releaseLock: (key, token, done) => call(() => evalScript(sender.command, RELEASE_LOCK, [key], [token]), isOne, done)
  }
}
