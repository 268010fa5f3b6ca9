/**
 * The store as the Effect 4 line sees it: each operation of a core store (`@effect-failclosed/core`: the Redis
 * driver, or the memory store) as one Effect. The core answers through a callback, so a round trip is one
 * `Effect.callback` and no Promise; a local answer (memory) is `Effect.sync`.
 */
import type * as Effect from "effect/Effect"
import type { BatchEntry, StoreFailure } from "@effect-failclosed/core"
import type { Cached, RateLimitDecision, RateLimitRequest } from "../DistributedCache.js"

/**
 * A store operation could not be carried out (the core's: `unavailable` trips the cooldown, `rejected` fails closed
 * with Redis up; `reason` never holds a secret).
 * @internal
 */
export type { StoreFailure } from "@effect-failclosed/core"

/**
 * The operations of a store, named as `DistributedCache` names them; `E` is how one fails (`never` for memory).
 * @internal
 */
export interface Store<E = StoreFailure> {
  readonly backend: "redis" | "local"
  /** the failure domain of a key (a Cluster shard's slot range); undefined: the store is one domain */
  readonly domainOf: ((key: string) => string) | undefined
  readonly ping: Effect.Effect<void, E>
  readonly get: (key: string) => Effect.Effect<string | null, E>
  readonly set: (key: string, value: string, ttlMillis: number | undefined) => Effect.Effect<void, E>
  /** the core's batch read: one MGET per Redis node, null for a missing key, in the order of the keys */
  readonly getMany: (keys: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<string | null>, E>
  /** the core's batch write: one round trip per Redis node */
  readonly setMany: (entries: ReadonlyArray<BatchEntry>) => Effect.Effect<void, E>
  readonly invalidate: (key: string) => Effect.Effect<boolean, E>
  readonly clear: (prefix: string) => Effect.Effect<number, E>
  readonly count: (prefix: string) => Effect.Effect<number, E>
  readonly claim: (key: string, ttlMillis: number) => Effect.Effect<boolean, E>
  readonly rateLimit: (request: RateLimitRequest) => Effect.Effect<RateLimitDecision, E>
  readonly acquireLock: (key: string, token: string, ttlMillis: number) => Effect.Effect<boolean, E>
  readonly releaseLock: (key: string, token: string) => Effect.Effect<boolean, E>
}

/**
 * A memory store: every operation answers at once; `reset` drops every entry, `size` counts them.
 * @internal
 */
export interface MemoryStore extends Store<never> {
  readonly reset: () => void
  readonly size: () => number
  /** the live entry of `key` as a LocalOnly read returns it (the same object for every read of one entry) */
  readonly read: (key: string) => Cached<string> | undefined
}
