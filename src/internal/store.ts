/**
 * The store floor: one interface, two implementations (memory in `memoryStore.ts`, Redis in `redis/store.ts`).
 * Features are written once against the `DistributedCache` service; the policy (`policy.ts`) builds that service
 * from a store and decides what a store failure means. Every operation is a plain Effect.
 */
import * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type { RateLimitDecision, RateLimitRequest } from "../DistributedCache.js"

/**
 * A store operation could not be carried out. `unavailable`: the backend did not answer
 * (connection refused or closed, timeout, loading, failover); this is what trips the
 * cooldown. `rejected`: the backend answered with an error (wrong type, out of memory, ACL):
 * the operation fails closed but the backend is up. `reason` never contains a secret.
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
 * The operations every store offers, named as the `DistributedCache` service names them. `E` is how an operation
 * fails: `StoreFailure` for Redis, `never` for memory.
 * @internal
 */
export interface Store<E = StoreFailure> {
  readonly backend: "redis" | "local"
  /**
   * The failure domain of a key: keys of one domain become unavailable and recover together, and the modes keep one
   * cooldown per domain. In a Redis Cluster: the slot range of the shard that owns the key's slot (`slots 0-5460`,
   * stable across a failover). Undefined: the store is one domain.
   */
  readonly domainOf: ((key: string) => string) | undefined
  /** answers when the backend answers */
  readonly ping: Effect.Effect<void, E>
  /** the entry of `key`, or null */
  readonly get: (key: string) => Effect.Effect<string | null, E>
  /** ttlMillis: a positive integer, or undefined for no expiry */
  readonly set: (key: string, value: string, ttlMillis: number | undefined) => Effect.Effect<void, E>
  /** the entries of `keys`, null for a missing one, in the order of the keys (Redis: one MGET per node) */
  readonly getMany: (keys: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<string | null>, E>
  /** writes every entry `[key, value, ttlMillis]` (Redis: one pipeline per node) */
  readonly setMany: (
    entries: ReadonlyArray<readonly [key: string, value: string, ttlMillis: number | undefined]>
  ) => Effect.Effect<void, E>
  /** deletes `key`: true when there was a live entry */
  readonly invalidate: (key: string) => Effect.Effect<boolean, E>
  /** deletes every key that starts with `prefix` (a partition prefix from internal/keys); returns how many */
  readonly clear: (prefix: string) => Effect.Effect<number, E>
  /** counts the live keys that start with `prefix` */
  readonly count: (prefix: string) => Effect.Effect<number, E>
  /** atomically claims `key` for ttlMillis: true when it was free */
  readonly claim: (key: string, ttlMillis: number) => Effect.Effect<boolean, E>
  /** one atomic rate-limit decision */
  readonly rateLimit: (request: RateLimitRequest) => Effect.Effect<RateLimitDecision, E>
  /**
   * Takes the lock `key` for `token` (a value unique to the taker) for ttlMillis: true when it was free. The lock
   * ends when its time to live does, or when its owner releases it.
   */
  readonly acquireLock: (key: string, token: string, ttlMillis: number) => Effect.Effect<boolean, E>
  /** releases the lock `key` only if `token` still owns it: true when it did */
  readonly releaseLock: (key: string, token: string) => Effect.Effect<boolean, E>
  /** drops every entry (the degraded fallback, on a transition); a no-op for Redis */
  readonly reset: Effect.Effect<void>
}

/**
 * A decision of either store, from what both compute: allowed, the budget left, and the wait in milliseconds.
 * @internal
 */
export const decisionOf = (allowed: boolean, remaining: number, retryAfterMillis: number): RateLimitDecision => ({
  allowed,
  remaining: Math.max(0, remaining),
  retryAfter: allowed || retryAfterMillis <= 0 ? Duration.zero : Duration.millis(retryAfterMillis)
})
