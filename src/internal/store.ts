/**
 * The store interface: the mechanism under every mode. Features (keyspace, rate limiter,
 * replay guard) are written once against it; modes (policy) decide what a failure means.
 */
import * as Effect from "effect/Effect"
import * as Effectable from "effect/Effectable"
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

/**
 * How a call to the backend ends: `error` is a driver or reply error (undefined on success), `reply` the backend's
 * reply.
 * @internal
 */
export type Done = (error: unknown, reply: unknown) => void

/**
 * One call to a backend, as an Effect that can also be finished in the callback that receives the reply
 * ({@link StoreCall.fold}): the policy's handling of a result then costs no step of its own. Run as an Effect, it
 * succeeds with `map(reply)` or fails with `failureOf(error)`.
 * @internal
 */
export class StoreCall<A> extends Effectable.Class<A, StoreFailure> {
  constructor(
    /** makes the call; must call `done` exactly once */
    readonly send: (done: Done) => void,
    readonly map: (reply: unknown) => A,
    readonly failureOf: (error: unknown) => StoreFailure
  ) {
    super()
  }

  commit(): Effect.Effect<A, StoreFailure> {
    return this.fold<A, StoreFailure>(Effect.succeed, Effect.fail)
  }

  /**
   * The call, continued by `onSuccess` or `onFailure` in the step that receives the reply. No canceler: with one,
   * Effect wraps the wait in `onInterrupt` (a mask and an exit handler per call, a third of a round trip's CPU). An
   * interrupted fiber ignores a late `resume`, and a call's timer ends by its deadline.
   */
  fold<B, E>(
    onSuccess: (a: A) => Effect.Effect<B, E>,
    onFailure: (failure: StoreFailure) => Effect.Effect<B, E>
  ): Effect.Effect<B, E> {
    return Effect.async<B, E>((resume) =>
      this.send((error, reply) => {
        let next: Effect.Effect<B, E>
        try {
          next = error === undefined ? onSuccess(this.map(reply)) : onFailure(this.failureOf(error))
        } catch (defect) {
          next = Effect.die(defect)
        }
        resume(next)
      })
    )
  }
}

/**
 * `Effect.matchEffect(effect, { onFailure, onSuccess })`, fused into the call's callback when `effect` is a
 * {@link StoreCall}.
 * @internal
 */
export const matchStore = <A, B, E>(
  effect: Effect.Effect<A, StoreFailure>,
  onFailure: (failure: StoreFailure) => Effect.Effect<B, E>,
  onSuccess: (a: A) => Effect.Effect<B, E>
): Effect.Effect<B, E> =>
  effect instanceof StoreCall
    ? (effect as StoreCall<A>).fold(onSuccess, onFailure)
    : Effect.matchEffect(effect, { onFailure, onSuccess })
