/**
 * The store interface: the mechanism under every mode. Features (keyspace, rate limiter,
 * replay guard) are written once against it; modes (policy) decide what a failure means.
 */
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

/** @internal */
export interface Store {
  readonly backend: "redis" | "local"
  /**
   * The failure domain of a key: keys of one domain become unavailable and recover together, and the modes keep one
   * cooldown per domain, so an outage of one domain does not refuse the keys of another. In a Redis Cluster: the
   * slot range of the shard that owns the key's slot (a label such as `slots 0-5460`, stable across a failover).
   * `""` (and an absent function) is the whole store.
   */
  readonly domainOf?: ((key: string) => string) | undefined
  /** answers when the backend answers */
  readonly ping: Effect.Effect<void, StoreFailure>
  readonly get: (key: string) => Effect.Effect<string | null, StoreFailure>
  /** ttlMillis: a positive integer, or undefined for no expiry */
  readonly set: (key: string, value: string, ttlMillis: number | undefined) => Effect.Effect<void, StoreFailure>
  readonly delete: (key: string) => Effect.Effect<boolean, StoreFailure>
  /** deletes every key that starts with `prefix` (a partition prefix from internal/keys) */
  readonly clear: (prefix: string) => Effect.Effect<number, StoreFailure>
  /** counts the live keys that start with `prefix` (a partition prefix from internal/keys) */
  readonly count: (prefix: string) => Effect.Effect<number, StoreFailure>
  /** atomically claims `key` for ttlMillis: true when it was free */
  readonly claim: (key: string, ttlMillis: number) => Effect.Effect<boolean, StoreFailure>
  /** one atomic rate-limit decision */
  readonly rateLimit: (request: RateLimitRequest) => Effect.Effect<RateLimitDecision, StoreFailure>
  /** drops every entry (used for a degraded-mode fallback on recovery) */
  readonly reset: Effect.Effect<void>
}
