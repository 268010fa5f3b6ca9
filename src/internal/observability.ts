/**
 * Spans and metrics of every cache operation, built to cost next to nothing when nobody observes:
 *
 * - a span is only made when the fiber's tracer is not Effect's native one (an application
 *   installed a tracer, e.g. `@effect/opentelemetry`): the check reads a field of the fiber;
 * - a metric update goes straight to a hook resolved once per tag set (no tag arrays built, no
 *   registry lookup per call).
 *
 * Features (`Keyspace`, `RateLimiter`, `ReplayGuard`) open the span of an operation, name it and
 * give its outcome; the policy (the mode) annotates that span with the backend that served and,
 * for a low-level `DistributedCache` call that no feature wrapped, opens the span itself. Span
 * attributes and metric tags carry the mode, the feature's name, the backend and the outcome:
 * never a key, a value, a tenant id or a secret.
 */
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as DefaultServices from "effect/DefaultServices"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as FiberRef from "effect/FiberRef"
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"
import * as MetricKey from "effect/MetricKey"
import type * as MetricKeyType from "effect/MetricKeyType"
import * as MetricLabel from "effect/MetricLabel"
import * as Tracer from "effect/Tracer"
import { type Backend, DistributedCache, type DistributedCacheService } from "../DistributedCache.js"
import type { CacheModeName } from "../DistributedCache.js"
import { CacheBackendUnavailable } from "../errors.js"
import * as SecurityEvent from "../SecurityEvent.js"

// --- metric keys (the public definitions in Observability.ts are built from these) ------------------------------------

const counterKey = (name: string, description: string) => MetricKey.counter(name, { description, incremental: true })

/** @internal */
export const HITS = counterKey("effect_failclosed_hits", "Keyspace reads answered from the cache")
/** @internal */
export const MISSES = counterKey("effect_failclosed_misses", "Keyspace reads that found no entry")
/** @internal */
export const FAILURES = counterKey(
  "effect_failclosed_failures",
  "Operations that failed or fell back because Redis was unavailable (reason unavailable or cooldown) or refused the command (rejected)"
)
/** @internal */
export const SECURITY_EVENTS = counterKey("effect_failclosed_security_events", "Security events emitted, by kind")
/** @internal */
export const RATE_LIMIT_DECISIONS = counterKey(
  "effect_failclosed_rate_limit_decisions",
  "Rate-limit decisions, allowed or denied"
)
/** @internal */
export const REPLAYS_DETECTED = counterKey("effect_failclosed_replays_detected", "Nonces claimed a second time")
/** @internal */
export const DEGRADED = MetricKey.gauge("effect_failclosed_degraded", {
  description: "1 while an ExplicitDegraded cache serves from its node-local fallback, else 0"
})
/** @internal */
export const BACKEND_UNAVAILABLE = MetricKey.gauge("effect_failclosed_backend_unavailable", {
  description: "1 while Redis is considered unavailable (from a failure until a probe answers), else 0"
})
/** @internal */
export const OPERATION_DURATION = MetricKey.histogram(
  "effect_failclosed_operation_duration",
  MetricBoundaries.fromIterable([0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000]),
  "Round trips to Redis, from admission to answer or timeout"
).pipe(MetricKey.tagged("time_unit", "milliseconds"))

const NO_TAGS: ReadonlyArray<MetricLabel.MetricLabel> = []

/** A metric of one tag set: its hook is resolved on the first update and kept. */
const withTags = <Type extends MetricKeyType.MetricKeyType<any, any>>(
  key: MetricKey.MetricKey<Type>,
  tags: ReadonlyArray<readonly [string, string]>
) =>
  Metric.fromMetricKey(
    MetricKey.taggedWithLabels(
      key,
      tags.map(([k, v]) => MetricLabel.make(k, v))
    )
  )

type Counter = Metric.Metric<MetricKeyType.MetricKeyType.Counter<number>, number, unknown>

const counter = (key: MetricKey.MetricKey.Counter<number>, tags: ReadonlyArray<readonly [string, string]>): Counter =>
  withTags(key, tags)

/** @internal */
export const increment = (c: Counter): void => c.unsafeUpdate(1, NO_TAGS)

/**
 * One value per mode, made on first use.
 * @internal
 */
export const perMode = <A>(make: (mode: CacheModeName) => A): ((mode: CacheModeName) => A) => {
  let strict: A | undefined
  let degraded: A | undefined
  let local: A | undefined
  return (mode) =>
    mode === "LocalOnly"
      ? (local ??= make(mode))
      : mode === "StrictDistributed"
        ? (strict ??= make(mode))
        : (degraded ??= make(mode))
}

/** @internal */
export const keyspaceMetrics = (name: string) =>
  perMode((mode) => ({
    hits: counter(HITS, [
      ["mode", mode],
      ["keyspace", name]
    ]),
    misses: counter(MISSES, [
      ["mode", mode],
      ["keyspace", name]
    ])
  }))

/** @internal */
export const rateLimitMetrics = (name: string) =>
  perMode((mode) => ({
    allowed: counter(RATE_LIMIT_DECISIONS, [
      ["mode", mode],
      ["limiter", name],
      ["decision", "allowed"]
    ]),
    denied: counter(RATE_LIMIT_DECISIONS, [
      ["mode", mode],
      ["limiter", name],
      ["decision", "denied"]
    ])
  }))

/** @internal */
export const replayMetrics = (name: string) =>
  perMode((mode) =>
    counter(REPLAYS_DETECTED, [
      ["mode", mode],
      ["guard", name]
    ])
  )

/** Why an operation failed (or fell back): the `reason` tag of the failures metric. @internal */
export type FailureReason = "unavailable" | "cooldown" | "rejected"

/** The metrics a mode updates for one operation name. @internal */
export interface OperationMetrics {
  readonly duration: Metric.Metric<MetricKeyType.MetricKeyType.Histogram, number, unknown>
  readonly unavailable: Counter
  readonly cooldown: Counter
  readonly rejected: Counter
}

/** @internal */
export const operationMetrics = (mode: CacheModeName): ((operation: string) => OperationMetrics) => {
  const byOperation = new Map<string, OperationMetrics>()
  // most calls in a row are of one operation: no Map lookup for those
  let lastOperation: string | undefined
  let last: OperationMetrics | undefined
  return (operation) => {
    if (operation === lastOperation) return last!
    let m = byOperation.get(operation)
    if (m === undefined) {
      const failures = (reason: FailureReason) =>
        counter(FAILURES, [
          ["mode", mode],
          ["operation", operation],
          ["reason", reason]
        ])
      m = {
        duration: withTags(OPERATION_DURATION, [
          ["mode", mode],
          ["operation", operation]
        ]),
        unavailable: failures("unavailable"),
        cooldown: failures("cooldown"),
        rejected: failures("rejected")
      }
      byOperation.set(operation, m)
    }
    lastOperation = operation
    last = m
    return m
  }
}

/** @internal */
export const recordDuration = (m: OperationMetrics, startMillis: number): void =>
  m.duration.unsafeUpdate(performance.now() - startMillis, NO_TAGS)

/** Sets the state gauges of a Redis mode (on a transition, in the same step as the breaker's). @internal */
export const stateGauges = (mode: CacheModeName) => {
  const degraded = withTags(DEGRADED, [["mode", mode]])
  const unavailable = withTags(BACKEND_UNAVAILABLE, [["mode", mode]])
  return (down: boolean): void => {
    unavailable.unsafeUpdate(down ? 1 : 0, NO_TAGS)
    if (mode === "ExplicitDegraded") degraded.unsafeUpdate(down ? 1 : 0, NO_TAGS)
  }
}

const eventCounter = perMode((mode) => {
  const byKind = new Map<SecurityEvent.SecurityEventKind, Counter>()
  return (kind: SecurityEvent.SecurityEventKind): Counter => {
    let c = byKind.get(kind)
    if (c === undefined) {
      c = counter(SECURITY_EVENTS, [
        ["mode", mode],
        ["event", kind]
      ])
      byKind.set(kind, c)
    }
    return c
  }
})

/**
 * `SecurityEvent.emit` that also counts the event (metric `effect_failclosed_security_events`, tags mode and event).
 * Every security event of the library goes through this.
 * @internal
 */
export const emitSecurityEvent = (fields: Parameters<typeof SecurityEvent.emit>[0]): Effect.Effect<void> =>
  Effect.zipRight(
    Effect.sync(() => increment(eventCounter(fields.mode)(fields.event))),
    SecurityEvent.emit(fields)
  )

// --- tracing ----------------------------------------------------------------------------------------------------------

const NATIVE_TRACER = Context.get(DefaultServices.liveServices, Tracer.Tracer)

/**
 * true when the fiber's tracer is one an application installed and tracing is enabled: only then are spans made
 * (the first comparison reads a field of the fiber, the common case costs nothing more)
 * @internal
 */
export const isTraced = (fiber: Fiber.RuntimeFiber<any, any>): boolean =>
  fiber.currentTracer !== NATIVE_TRACER && fiber.getFiberRef(FiberRef.currentTracerEnabled)

/** @internal */
export const ATTRIBUTES = {
  mode: "effect_failclosed.mode",
  keyspace: "effect_failclosed.keyspace",
  limiter: "effect_failclosed.limiter",
  guard: "effect_failclosed.guard",
  backend: "effect_failclosed.backend",
  degraded: "effect_failclosed.degraded",
  near: "effect_failclosed.near",
  outcome: "effect_failclosed.outcome",
  failureReason: "effect_failclosed.failure_reason"
} as const

/** The operations that have a span of their own, and the store operations of the `DistributedCache` service. @internal */
export type Operation =
  | "get"
  | "set"
  | "getMany"
  | "setMany"
  | "invalidate"
  | "invalidateTag"
  | "clear"
  | "count"
  | "getOrCompute"
  | "claim"
  | "rateLimit"
  | "acquireLock"
  | "releaseLock"

const spanNames = new Map<string, string>()
const spanName = (operation: string): string => {
  let name = spanNames.get(operation)
  if (name === undefined) {
    name = `effect-failclosed.${operation}`
    if (spanNames.size < 64) spanNames.set(operation, name)
  }
  return name
}

/**
 * The failure reason of a CacheBackendUnavailable the policy made, kept on the error itself (not in a WeakMap: a
 * failure inside a span reaches the cause wrapped in a Proxy that forwards property reads, not identity).
 */
const FailureReasonKey = Symbol.for("effect-failclosed/FailureReason")

/** @internal */
export const classify = <E extends object>(error: E, reason: FailureReason): E =>
  Object.defineProperty(error, FailureReasonKey, { value: reason, enumerable: false })

/**
 * A failure of a store operation named after the feature operation that made it (getOrCompute's get and set fail as
 * `getOrCompute`), with its classification.
 * @internal
 */
export const failedIn =
  (operation: Operation) =>
  (error: CacheBackendUnavailable): CacheBackendUnavailable =>
    classify(
      new CacheBackendUnavailable({ mode: error.mode, operation, reason: error.reason }),
      reasonOf(error) ?? "unavailable"
    )

const reasonOf = (error: unknown): FailureReason | undefined =>
  typeof error === "object" && error !== null
    ? ((error as { readonly [FailureReasonKey]?: FailureReason })[FailureReasonKey] ?? undefined)
    : undefined

const tagOf = (u: unknown): unknown =>
  typeof u === "object" && u !== null && "_tag" in u ? (u as { readonly _tag: unknown })._tag : undefined

/** The outcome of a failed operation. @internal */
export const failureOutcome = (cause: Cause.Cause<unknown>): string => {
  const failure = Cause.failureOption(cause)
  if (failure._tag === "None") return Cause.isInterruptedOnly(cause) ? "interrupted" : "defect"
  switch (tagOf(failure.value)) {
    case "CacheBackendUnavailable":
      return reasonOf(failure.value) === "rejected" ? "rejected" : "unavailable"
    case "CacheEntryInvalid":
    case "CacheValueInvalid":
    case "RateLimitInputInvalid":
      return "invalid"
    case "ReplayDetected":
      return "replay"
    case "RateLimitExceeded":
      return "denied"
    default:
      return "error"
  }
}

const failureReasonOf = (cause: Cause.Cause<unknown>): FailureReason | undefined => {
  const failure = Cause.failureOption(cause)
  return failure._tag === "Some" ? reasonOf(failure.value) : undefined
}

/** the spans features opened: a store operation inside one annotates it instead of opening its own */
const featureSpans = new WeakSet<Tracer.AnySpan>()

const spanOptions = (attributes: Record<string, unknown>): Tracer.SpanOptions => ({
  attributes,
  captureStackTrace: false
})

/**
 * What a feature tells about one call beyond its result (getOrCompute: hit or miss). Written on every call, read
 * only when the call is traced.
 * @internal
 */
export interface Report {
  outcome: string | undefined
  /** the result came from the near cache (no store operation marked the span) */
  near: boolean
}

/** the sink of untraced calls: written, never read */
const UNTRACED: Report = { outcome: undefined, near: false }

/** the attributes a feature's span starts with (a LocalOnly result's marks are known before the call) */
const featureAttributes = (mode: CacheModeName, subject: Subject, name: string) =>
  mode === "LocalOnly"
    ? {
        [ATTRIBUTES.mode]: mode,
        [ATTRIBUTES[subject]]: name,
        [ATTRIBUTES.backend]: "local",
        [ATTRIBUTES.degraded]: false
      }
    : { [ATTRIBUTES.mode]: mode, [ATTRIBUTES[subject]]: name }

/** @internal */
export type Subject = "keyspace" | "limiter" | "guard"

/**
 * The operations of one feature (a keyspace, a limiter, a guard): `observe(operation, body, successOutcome)` runs
 * `body` with the `DistributedCache` in context (in place of `Effect.flatMap(DistributedCache, …)`, and cheaper),
 * inside a span `effect-failclosed.<operation>` when the fiber is traced.
 * @internal
 */
export const feature =
  (subject: Subject, name: string) =>
  <A, E, R>(
    operation: Operation,
    body: (
      cache: DistributedCacheService,
      report: Report,
      fiber: Fiber.RuntimeFiber<unknown, unknown>
    ) => Effect.Effect<A, E, R>,
    successOutcome?: (a: A) => string
  ): Effect.Effect<A, E, R | DistributedCache> =>
    Effect.withFiberRuntime<A, E, R | DistributedCache>((fiber) => {
      const cache = Context.unsafeGet(fiber.currentContext, DistributedCache)
      if (!isTraced(fiber)) return body(cache, UNTRACED, fiber)
      return Effect.useSpan(spanName(operation), spanOptions(featureAttributes(cache.mode, subject, name)), (span) => {
        featureSpans.add(span)
        const report: Report = { outcome: undefined, near: false }
        return Effect.withParentSpan(
          Effect.onExit(body(cache, report, fiber), (exit) =>
            Effect.sync(() => {
              if (Exit.isSuccess(exit) && report.near) {
                // served without a store operation: the marks the store would have set
                span.attribute(ATTRIBUTES.backend, "redis")
                span.attribute(ATTRIBUTES.degraded, false)
                span.attribute(ATTRIBUTES.near, true)
              }
              span.attribute(
                ATTRIBUTES.outcome,
                Exit.isSuccess(exit)
                  ? (report.outcome ?? (successOutcome === undefined ? "ok" : successOutcome(exit.value)))
                  : failureOutcome(exit.cause)
              )
            })
          ),
          span
        )
      })
    })

/** the outcome of a store operation's result, in the span of a direct call */
const storeOutcome = (operation: Operation, value: unknown): string => {
  switch (operation) {
    case "get":
      return value === undefined || value === null ? "miss" : "hit"
    case "claim":
      return value === false ? "replay" : "ok"
    case "rateLimit":
      return (value as { readonly allowed: boolean }).allowed ? "ok" : "denied"
    default:
      return "ok"
  }
}

const annotate = (
  span: Tracer.Span,
  exit: Exit.Exit<unknown, unknown>,
  backend: Backend,
  operation: Operation | undefined
): void => {
  if (Exit.isSuccess(exit)) {
    const value: unknown = exit.value
    if (typeof value === "object" && value !== null && "backend" in value && "degraded" in value) {
      span.attribute(ATTRIBUTES.backend, value.backend)
      span.attribute(ATTRIBUTES.degraded, value.degraded)
      if (operation !== undefined) span.attribute(ATTRIBUTES.outcome, storeOutcome(operation, (value as any).value))
    } else {
      span.attribute(ATTRIBUTES.backend, backend)
      span.attribute(ATTRIBUTES.degraded, false)
      if (operation !== undefined) span.attribute(ATTRIBUTES.outcome, storeOutcome(operation, value))
    }
    return
  }
  // nothing was served
  span.attribute(ATTRIBUTES.backend, backend)
  span.attribute(ATTRIBUTES.degraded, false)
  const reason = failureReasonOf(exit.cause)
  if (reason !== undefined) span.attribute(ATTRIBUTES.failureReason, reason)
  if (operation !== undefined) span.attribute(ATTRIBUTES.outcome, failureOutcome(exit.cause))
}

/**
 * Traces one store operation of a traced fiber: annotates the span of the feature that called it with the backend
 * that served, or, for a direct `DistributedCache` call, opens a span of its own.
 * @internal
 */
export const traceStore = <B, E>(
  fiber: Fiber.RuntimeFiber<any, any>,
  mode: CacheModeName,
  backend: Backend,
  operation: Operation,
  body: Effect.Effect<B, E>
): Effect.Effect<B, E> => {
  const current = fiber.currentSpan
  if (current !== undefined && current._tag === "Span" && featureSpans.has(current)) {
    return Effect.onExit(body, (exit) => Effect.sync(() => annotate(current, exit, backend, undefined)))
  }
  return Effect.useSpan(spanName(operation), spanOptions({ [ATTRIBUTES.mode]: mode }), (span) =>
    Effect.onExit(body, (exit) => Effect.sync(() => annotate(span, exit, backend, operation)))
  )
}
