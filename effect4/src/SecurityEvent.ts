/**
 * The security events of the Effect 4 line: the same Schema as `effect-failclosed` (the Effect 3 line), emitted the
 * same way (one `Effect.logWarning(event)` per transition, the event object itself), so one log pipeline reads the
 * events of both lines.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { CacheModeName } from "./DistributedCache.js"

/**
 * The kinds of security event: Redis unavailable at startup or at runtime, and Redis recovered.
 *
 * @example
 * ```ts
 * import { SecurityEventKind } from "effect-failclosed-effect4"
 *
 * const kind: SecurityEventKind = "BACKEND_RECOVERED"
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export const SecurityEventKind = Schema.Literals([
  "BACKEND_UNAVAILABLE_AT_STARTUP",
  "BACKEND_UNAVAILABLE_AT_RUNTIME",
  "BACKEND_RECOVERED"
])

/**
 * @since 0.1.0
 * @category models
 */
export type SecurityEventKind = typeof SecurityEventKind.Type

/**
 * One security event, as a Logger receives it (`message` = `[event]`).
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { SecurityEvent } from "effect-failclosed-effect4"
 *
 * const isSecurityEvent = Schema.is(SecurityEvent)
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export const SecurityEvent = Schema.Struct({
  event: SecurityEventKind,
  backend: Schema.Literal("redis"),
  mode: CacheModeName,
  tenant: Schema.NullOr(Schema.String),
  detail: Schema.String,
  timestamp: Schema.String.check(
    Schema.makeFilter((s: string) => !Number.isNaN(Date.parse(s)) || "an ISO-8601 timestamp")
  )
})

/**
 * @since 0.1.0
 * @category models
 */
export type SecurityEvent = typeof SecurityEvent.Type

/**
 * Builds an event stamped with the current time of Effect's `Clock` (so `TestClock` rules).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import * as SecurityEvent from "effect-failclosed-effect4/SecurityEvent"
 *
 * const event = SecurityEvent.make({ event: "BACKEND_RECOVERED", mode: "ExplicitDegraded", detail: "PING answered" })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (fields: {
  readonly event: SecurityEventKind
  readonly mode: CacheModeName
  readonly detail: string
  readonly tenant?: string | null
}): Effect.Effect<SecurityEvent> =>
  Effect.map(
    Effect.clockWith((clock) => clock.currentTimeMillis),
    (now): SecurityEvent => ({
      event: fields.event,
      backend: "redis",
      mode: fields.mode,
      tenant: fields.tenant ?? null,
      detail: fields.detail,
      timestamp: new Date(now).toISOString()
    })
  )

/**
 * Emits an event: one `Effect.logWarning(event)`, the event object itself.
 *
 * @example
 * ```ts
 * import * as SecurityEvent from "effect-failclosed-effect4/SecurityEvent"
 *
 * const warn = SecurityEvent.emit({ event: "BACKEND_UNAVAILABLE_AT_RUNTIME", mode: "ExplicitDegraded", detail: "timeout" })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const emit = (fields: Parameters<typeof make>[0]): Effect.Effect<void> =>
  Effect.flatMap(make(fields), (event) => Effect.logWarning(event))
