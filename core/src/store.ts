/**
 * The store: one set of operations, named as the `DistributedCache` service names them, with two implementations.
 *
 * - {@link RedisStore} (`redis/store.ts`): each operation takes a callback, {@link Done}, called once with the reply or
 *   a {@link StoreFailure} (never a throw, never a Promise per call), so a wrapper turns a call into one
 *   `Effect.async` (`Effect.callback` on Effect 4) and nothing more.
 * - {@link MemoryStore} (`memoryStore.ts`): the same operations, synchronous (a wrapper's `Effect.sync`), with time
 *   from a `now` function the wrapper passes (Effect's Clock, so TestClock rules).
 */
import type { BatchEntry } from "./batch.js"

/**
 * A store operation could not be carried out. `unavailable`: the backend did not answer (connection refused or
 * closed, timeout, loading, failover); this is what trips the cooldown. `rejected`: the backend answered with an
 * error (wrong type, out of memory, ACL): the operation fails closed but the backend is up. `reason` never contains a
 * secret.
 * @internal
 */
export class StoreFailure {
  readonly _tag = "StoreFailure"
  constructor(
    readonly kind: "unavailable" | "rejected",
    readonly reason: string
  ) {}
}

/**
 * How a Redis operation ends: with a failure, or with its value (`failure` undefined).
 * @internal
 */
export type Done<A> = (failure: StoreFailure | undefined, value: A) => void

/** @internal */
export type RateLimitAlgorithm = "fixed-window" | "sliding-window" | "token-bucket"

/**
 * One rate-limit decision to make: `key` is the limiter's partition key of the subject.
 * @internal
 */
export interface RateLimitRequest {
  readonly key: string
  readonly algorithm: RateLimitAlgorithm
  readonly limit: number
  readonly windowMillis: number
  readonly cost: number
}

/**
 * A rate-limit decision of either store: allowed, the budget left (never negative) and, when denied, the wait.
 * @internal
 */
export interface Decision {
  readonly allowed: boolean
  readonly remaining: number
  /** zero when allowed or when nothing is to be waited for */
  readonly retryAfterMillis: number
}

/**
 * A decision from what both stores compute.
 * @internal
 */
export const decisionOf = (allowed: boolean, remaining: number, retryAfterMillis: number): Decision => ({
  allowed,
  remaining: Math.max(0, remaining),
  retryAfterMillis: allowed || retryAfterMillis <= 0 ? 0 : retryAfterMillis
})

/**
 * The Redis store's operations: each calls `done` once, with the value or a {@link StoreFailure} (a timeout is an
 * `unavailable` failure with reason `timeout`).
 * @internal
 */
export interface RedisStore {
  readonly backend: "redis"
  /**
   * The failure domain of a key: keys of one domain become unavailable and recover together, and the modes keep one
   * cooldown per domain. In a Redis Cluster: the slot range of the shard that owns the key's slot (`slots 0-5460`,
   * stable across a failover). Undefined: the store is one domain.
   */
  readonly domainOf: ((key: string) => string) | undefined
  /** answers when the backend answers */
  readonly ping: (done: Done<void>) => void
  /** the entry of `key`, or null */
  readonly get: (key: string, done: Done<string | null>) => void
  /** ttlMillis: a positive integer, or undefined for no expiry */
  readonly set: (key: string, value: string, ttlMillis: number | undefined, done: Done<void>) => void
  /** the entries of `keys`, null for a missing one, in the order of the keys: one MGET per node (`batch.ts`) */
  readonly getMany: (keys: ReadonlyArray<string>, done: Done<ReadonlyArray<string | null>>) => void
  /** writes every entry `[key, value, ttlMillis]`: one pipeline per node (`batch.ts`) */
  readonly setMany: (entries: ReadonlyArray<BatchEntry>, done: Done<void>) => void
  /** deletes `key`: true when there was a live entry */
  readonly invalidate: (key: string, done: Done<boolean>) => void
  /** deletes every key that starts with `prefix` (a partition prefix of the key codec); how many */
  readonly clear: (prefix: string, done: Done<number>) => void
  /** counts the live keys that start with `prefix` */
  readonly count: (prefix: string, done: Done<number>) => void
  /** atomically claims `key` for ttlMillis: true when it was free */
  readonly claim: (key: string, ttlMillis: number, done: Done<boolean>) => void
  /** one atomic rate-limit decision */
  readonly rateLimit: (request: RateLimitRequest, done: Done<Decision>) => void
  /**
   * Takes the lock `key` for `token` (a value unique to the taker) for ttlMillis: true when it was free. The lock
   * ends when its time to live does, or when its owner releases it.
   */
  readonly acquireLock: (key: string, token: string, ttlMillis: number, done: Done<boolean>) => void
  /** releases the lock `key` only if `token` still owns it: true when it did */
  readonly releaseLock: (key: string, token: string, done: Done<boolean>) => void
}

/**
 * An entry of the memory store as a LocalOnly read returns it: the same object for every read of one entry (a new one
 * after the entry is written again).
 * @internal
 */
export interface LocalRead {
  readonly value: string
  readonly backend: "local"
  readonly degraded: false
  readonly near: false
  readonly stale: false
}

/**
 * The memory store's operations: the same names and results as {@link RedisStore}, synchronous; and what only a
 * node-local store can offer (its size, a reset, a read that returns the entry's object).
 * @internal
 */
export interface MemoryStore {
  readonly backend: "local"
  readonly size: () => number
  readonly get: (key: string) => string | null
  readonly set: (key: string, value: string, ttlMillis: number | undefined) => void
  readonly getMany: (keys: ReadonlyArray<string>) => ReadonlyArray<string | null>
  readonly setMany: (entries: ReadonlyArray<BatchEntry>) => void
  readonly invalidate: (key: string) => boolean
  readonly clear: (prefix: string) => number
  readonly count: (prefix: string) => number
  readonly claim: (key: string, ttlMillis: number) => boolean
  readonly rateLimit: (request: RateLimitRequest) => Decision
  readonly acquireLock: (key: string, token: string, ttlMillis: number) => boolean
  readonly releaseLock: (key: string, token: string) => boolean
  /**
   * The live entry of `key` as a LocalOnly read returns it, the same object for every read of one entry, so a reader
   * can keep what it derives from an entry next to it (in a WeakMap) for as long as the entry lives.
   */
  readonly read: (key: string) => LocalRead | undefined
  /** drops every entry and all rate-limit state (the degraded fallback, at each transition) */
  readonly reset: () => void
}
