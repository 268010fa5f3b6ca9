/**
 * Every tagged error of the Effect 4 line, in one module: the same tags, fields and messages as `effect-failclosed`
 * (the Effect 3 line), so a `catchTag` reads the same in both. Each is a separate class so a caller can
 * `Effect.catchTag` exactly the failure it means to handle.
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Schema from "effect/Schema"
import { CacheModeName } from "./DistributedCache.js"

/**
 * Which input a rejection is about, for a caller that answers it (an HTTP 400 names the header it read): `key`,
 * `value`, `tenant`, `timeToLive` and `options` for a keyspace; `nonce` and `tenant` for a replay guard; `subject`,
 * `tenant` and `cost` for a rate limiter. Carried by `CacheValueInvalid` and `RateLimitInputInvalid` as `field`.
 *
 * @example
 * ```ts
 * import type { InputField } from "effect-failclosed-effect4"
 *
 * const label = (field: InputField | undefined) => (field === "tenant" ? "X-Tenant header" : "request body")
 * ```
 *
 * @since 0.2.0
 * @category errors
 */
export const InputField = Schema.Literals([
  "key",
  "value",
  "tenant",
  "timeToLive",
  "tags",
  "options",
  "nonce",
  "subject",
  "cost"
])

/**
 * @since 0.2.0
 * @category errors
 */
export type InputField = typeof InputField.Type

/**
 * Redis could not be reached, did not answer within its timeout, or is in the cooldown that follows such a failure.
 * Nothing was decided and nothing was served from node-local state. Degrade explicitly with
 * `Effect.catchTag("CacheBackendUnavailable", …)`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { CacheBackendUnavailable } from "effect-failclosed-effect4"
 *
 * const failed = Effect.fail(
 *   new CacheBackendUnavailable({ mode: "StrictDistributed", operation: "get", reason: "timeout" })
 * )
 * const handled = failed.pipe(Effect.catchTag("CacheBackendUnavailable", () => Effect.succeed("503")))
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class CacheBackendUnavailable extends Schema.TaggedError<CacheBackendUnavailable>(
  "effect-failclosed/CacheBackendUnavailable"
)("CacheBackendUnavailable", {
  mode: CacheModeName,
  operation: Schema.String,
  reason: Schema.String
}) {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    if (this.operation === "startup") {
      return (
        `Redis is unavailable at startup (${this.reason}) and the cache was composed with ${this.mode}, ` +
        `which fails closed. Start Redis, or compose ExplicitDegraded (node-local fallback, marked results, ` +
        `security events) or LocalOnly (no Redis at all) if that is what this service should do.`
      )
    }
    return `Redis is unavailable for "${this.operation}" (${this.reason}); ${this.mode} fails closed.`
  }
}

/**
 * An entry stored in the cache does not decode with the keyspace's value Schema. The entry is never returned: a
 * wrong-typed value is worse than a miss.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import type { CacheEntryInvalid } from "effect-failclosed-effect4"
 *
 * const asMiss = <A, R>(self: Effect.Effect<A, CacheEntryInvalid, R>) =>
 *   self.pipe(Effect.catchTag("CacheEntryInvalid", () => Effect.succeed(undefined)))
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class CacheEntryInvalid extends Schema.TaggedError<CacheEntryInvalid>("effect-failclosed/CacheEntryInvalid")(
  "CacheEntryInvalid",
  {
    keyspace: Schema.String,
    reason: Schema.String
  }
) {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `A stored entry of keyspace "${this.keyspace}" is not a valid value: ${this.reason}`
  }
}

/**
 * A value (or key, or tenant id) was rejected before anything was written: JSON cannot carry it faithfully, it is
 * over a size limit, or it does not encode with the keyspace's Schema.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { CacheValueInvalid } from "effect-failclosed-effect4"
 *
 * const error = new CacheValueInvalid({ keyspace: "users", reason: "NaN at $.score" })
 * const program = Effect.fail(error).pipe(Effect.catchTag("CacheValueInvalid", (e) => Effect.log(e.message)))
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class CacheValueInvalid extends Schema.TaggedError<CacheValueInvalid>("effect-failclosed/CacheValueInvalid")(
  "CacheValueInvalid",
  {
    keyspace: Schema.optional(Schema.String),
    guard: Schema.optional(Schema.String),
    reason: Schema.String,
    /** the input the rejection is about */
    field: Schema.optional(InputField)
  }
) {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    const by = this.guard === undefined ? `keyspace "${this.keyspace}"` : `replay guard "${this.guard}"`
    return `Rejected for ${by}, nothing was written: ${this.reason}`
  }
}

/**
 * A rate limit denied the request. `retryAfter` is how long until the same request could be allowed.
 *
 * @example
 * ```ts
 * import { Duration, Effect } from "effect"
 * import { RateLimitExceeded } from "effect-failclosed-effect4"
 *
 * const denied = Effect.fail(new RateLimitExceeded({ limiter: "login", retryAfter: Duration.seconds(3) }))
 * const status = denied.pipe(Effect.catchTag("RateLimitExceeded", () => Effect.succeed(429)))
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class RateLimitExceeded extends Schema.TaggedError<RateLimitExceeded>("effect-failclosed/RateLimitExceeded")(
  "RateLimitExceeded",
  {
    limiter: Schema.String,
    retryAfter: Schema.Duration
  }
) {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `Rate limit "${this.limiter}" exceeded; retry after ${Duration.format(this.retryAfter)}`
  }
}

/**
 * A nonce was already claimed within the guard's window, on this node or any other (of either Effect line).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { ReplayDetected } from "effect-failclosed-effect4"
 *
 * const replay = Effect.fail(new ReplayDetected({ guard: "webhooks" }))
 * const status = replay.pipe(Effect.catchTag("ReplayDetected", () => Effect.succeed(409)))
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class ReplayDetected extends Schema.TaggedError<ReplayDetected>("effect-failclosed/ReplayDetected")(
  "ReplayDetected",
  {
    guard: Schema.String,
    /**
     * true when the claim was refused by the node-local fallback of `ExplicitDegraded` while Redis was unavailable
     * (only this node's claims of the outage were seen); false or absent when Redis refused it
     */
    degraded: Schema.optional(Schema.Boolean)
  }
) {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `Replay detected by guard "${this.guard}": this nonce was already claimed`
  }
}

/**
 * A call to `consume` or `enforce` was rejected before anything reached the store: an empty or oversized subject or
 * tenant id, or a cost that is not an integer between 1 and the limit. The message never contains the subject or the
 * tenant id.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { RateLimitInputInvalid } from "effect-failclosed-effect4"
 *
 * const badRequest = Effect.fail(new RateLimitInputInvalid({ limiter: "api", reason: "subject is empty" }))
 * const status = badRequest.pipe(Effect.catchTag("RateLimitInputInvalid", () => Effect.succeed(400)))
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export class RateLimitInputInvalid extends Schema.TaggedError<RateLimitInputInvalid>(
  "effect-failclosed/RateLimitInputInvalid"
)("RateLimitInputInvalid", {
  limiter: Schema.String,
  reason: Schema.String,
  /** the input the rejection is about: `subject`, `tenant` or `cost` */
  field: Schema.optional(InputField)
}) {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `Rate limit "${this.limiter}" rejected the call before deciding: ${this.reason}`
  }
}
