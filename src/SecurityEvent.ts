/**
 * Security events: the structured records this library logs when the cache's relation to Redis
 * changes (unavailable at startup, unavailable at runtime, recovered).
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { CacheModeName } from "./DistributedCache.js"

/**
 * The kinds of security event.
 *
 * @example
 * ```ts
 * import type { SecurityEventKind } from "effect-failclosed"
 *
 * const pagesOnCall = (kind: SecurityEventKind) => kind !== "BACKEND_RECOVERED"
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export const SecurityEventKind = Schema.Literal(
  "BACKEND_UNAVAILABLE_AT_STARTUP",
  "BACKEND_UNAVAILABLE_AT_RUNTIME",
  "BACKEND_RECOVERED"
)

/**
 * @since 0.1.0
 * @category models
 */
export type SecurityEventKind = typeof SecurityEventKind.Type

/**
 * The shape of a security event, as a Schema. A Logger receives the event object itself as
 * the single element of `message`, so a JSON or OpenTelemetry logger keeps its structure.
 *
 * @example
 * ```ts
 * import { Logger, Schema } from "effect"
 * import { SecurityEvent } from "effect-failclosed"
 *
 * const isEvent = Schema.is(SecurityEvent)
 * // a Logger that forwards security events to an alerting pipeline
 * const alerts = Logger.make(({ message }) => {
 *   const [event] = message as ReadonlyArray<unknown>
 *   if (isEvent(event)) console.error("security event", event.event, event.mode)
 * })
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
  timestamp: Schema.String.pipe(Schema.filter((s) => !Number.isNaN(Date.parse(s)) || "an ISO-8601 timestamp"))
})

/**
 * @since 0.1.0
 * @category models
 */
export type SecurityEvent = typeof SecurityEvent.Type

/**
 * Builds an event stamped with the current time of Effect's `Clock`.
 * @internal
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
 * Logs an event at level Warning, as one structured value (`Effect.logWarning(event)`: a Logger receives
 * `message = [event]`).
 * @internal
 */
export const emit = (fields: Parameters<typeof make>[0]): Effect.Effect<void> =>
  Effect.flatMap(make(fields), (event) => Effect.logWarning(event))
