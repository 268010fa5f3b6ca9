/**
 * What the library reports about itself, through Effect's own `Tracer` and `Metric`, so that
 * whatever an application installs (`@effect/opentelemetry`, a Prometheus exporter) receives it.
 *
 * **Spans.** Every operation is a span named `effect-failclosed.<operation>` (`get`, `set`,
 * `invalidate`, `clear`, `getOrCompute`, `claim`, `rateLimit`, and `count` and the others for direct
 * `DistributedCache` calls) with the attributes
 *
 * - `effect_failclosed.mode`: `StrictDistributed`, `ExplicitDegraded` or `LocalOnly`
 * - `effect_failclosed.keyspace`, `effect_failclosed.limiter` or `effect_failclosed.guard`: the name
 *   given to `Keyspace.make`, `RateLimiter.make` or `ReplayGuard.make`
 * - `effect_failclosed.backend`: `redis`, `local` or `local_degraded`
 * - `effect_failclosed.degraded`: true when the node-local fallback of an `ExplicitDegraded` cache
 *   served the result
 * - `effect_failclosed.outcome`: `ok`, `hit`, `miss`, `unavailable`, `rejected`, `invalid`,
 *   `replay`, `denied`, `error` (a failure of `getOrCompute`'s computation), `interrupted`
 * - `effect_failclosed.failure_reason`: `unavailable`, `cooldown` or `rejected`, when Redis did
 *   not serve
 *
 * Spans are made only when the application installed a tracer: with Effect's default tracer an
 * operation costs no more than without tracing. No attribute ever holds a key, a value, a
 * subject, a nonce, a tenant id or a secret.
 *
 * **Metrics** are the definitions below, tagged with the mode and the keyspace, limiter or guard
 * name (never a tenant). Effect keeps them in its global metric registry; read them with
 * `Metric.snapshot`, or export them (`@effect/opentelemetry`'s `Metrics.layer`). To read one
 * series with `Metric.value`, add the tags in the order each definition lists them.
 *
 * @since 0.1.0
 */
import * as Metric from "effect/Metric"
import * as internal from "./internal/observability.js"
import * as stampede from "./internal/getOrCompute.js"
import * as near from "./internal/nearCache.js"

/**
 * Keyspace reads (`get`, and the lookup of `getOrCompute`) that found a valid entry. Tags, in
 * order: `mode`, `keyspace`.
 *
 * @example
 * ```ts
 * import { Effect, Metric, Schema } from "effect"
 * import { Keyspace, LocalOnly, Observability } from "effect-failclosed"
 *
 * const Users = Keyspace.make({ name: "users", key: Schema.String, value: Schema.String, timeToLive: "1 minute" })
 * const usersHits = Observability.hits.pipe(Metric.tagged("mode", "LocalOnly"), Metric.tagged("keyspace", "users"))
 *
 * const program = Effect.gen(function* () {
 *   yield* Users.set("ada", "Ada")
 *   yield* Users.get("ada")
 *   return (yield* Metric.value(usersHits)).count
 * }).pipe(Effect.provide(LocalOnly))
 * ```
 *
 * @since 0.1.0
 * @category metrics
 */
export const hits: Metric.Metric.Counter<number> = Metric.fromMetricKey(internal.HITS)

/**
 * Keyspace reads that found no entry. Tags, in order: `mode`, `keyspace`.
 *
 * @example
 * ```ts
 * import { Metric } from "effect"
 * import { Observability } from "effect-failclosed"
 *
 * const sessionMisses = Observability.misses.pipe(
 *   Metric.tagged("mode", "StrictDistributed"),
 *   Metric.tagged("keyspace", "sessions")
 * )
 * ```
 *
 * @since 0.1.0
 * @category metrics
 */
export const misses: Metric.Metric.Counter<number> = Metric.fromMetricKey(internal.MISSES)

/**
 * Operations of a Redis mode that Redis did not serve: `reason` is `unavailable` (no answer
 * within the timeout, connection lost), `cooldown` (refused at once after a failure, Redis not
 * contacted) or `rejected` (Redis answered with an error). In `ExplicitDegraded` this counts
 * calls served by the fallback too. Tags, in order: `mode`, `operation`, `reason`.
 *
 * @example
 * ```ts
 * import { Metric } from "effect"
 * import { Observability } from "effect-failclosed"
 *
 * const getTimeouts = Observability.failures.pipe(
 *   Metric.tagged("mode", "StrictDistributed"),
 *   Metric.tagged("operation", "get"),
 *   Metric.tagged("reason", "unavailable")
 * )
 * ```
 *
 * @since 0.1.0
 * @category metrics
 */
export const failures: Metric.Metric.Counter<number> = Metric.fromMetricKey(internal.FAILURES)

/**
 * 1 while an `ExplicitDegraded` cache serves from its node-local fallback, else 0. Tag: `mode`.
 * Caches of one mode in one process share the gauge: the last transition sets it.
 *
 * @example
 * ```ts
 * import { Effect, Metric } from "effect"
 * import { Observability } from "effect-failclosed"
 *
 * const isDegraded = Effect.map(
 *   Metric.value(Observability.degraded.pipe(Metric.tagged("mode", "ExplicitDegraded"))),
 *   (state) => state.value === 1
 * )
 * ```
 *
 * @since 0.1.0
 * @category metrics
 */
export const degraded: Metric.Metric.Gauge<number> = Metric.fromMetricKey(internal.DEGRADED)

/**
 * 1 while a Redis mode considers Redis unavailable (from a failure until a probe answers), else
 * 0. Tag: `mode`. Caches of one mode in one process share the gauge: the last transition sets it.
 *
 * @example
 * ```ts
 * import { Metric } from "effect"
 * import { Observability } from "effect-failclosed"
 *
 * const strictDown = Observability.backendUnavailable.pipe(Metric.tagged("mode", "StrictDistributed"))
 * ```
 *
 * @since 0.1.0
 * @category metrics
 */
export const backendUnavailable: Metric.Metric.Gauge<number> = Metric.fromMetricKey(internal.BACKEND_UNAVAILABLE)

/**
 * Security events emitted (one per transition, see `SecurityEvent`). Tags, in order: `mode`,
 * `event` (`BACKEND_UNAVAILABLE_AT_STARTUP`, `BACKEND_UNAVAILABLE_AT_RUNTIME`,
 * `BACKEND_RECOVERED`). Alert on increases of the first two.
 *
 * @example
 * ```ts
 * import { Metric } from "effect"
 * import { Observability } from "effect-failclosed"
 *
 * const outages = Observability.securityEvents.pipe(
 *   Metric.tagged("mode", "StrictDistributed"),
 *   Metric.tagged("event", "BACKEND_UNAVAILABLE_AT_RUNTIME")
 * )
 * ```
 *
 * @since 0.1.0
 * @category metrics
 */
export const securityEvents: Metric.Metric.Counter<number> = Metric.fromMetricKey(internal.SECURITY_EVENTS)

/**
 * Round trips to Redis in milliseconds, from admission to the answer or the timeout, by
 * operation (calls refused during a cooldown and in-memory operations are not timed). Tags, in
 * order: `time_unit` (`milliseconds`, already set), `mode`, `operation`.
 *
 * @example
 * ```ts
 * import { Metric } from "effect"
 * import { Observability } from "effect-failclosed"
 *
 * const getLatency = Observability.operationDuration.pipe(
 *   Metric.tagged("mode", "StrictDistributed"),
 *   Metric.tagged("operation", "get")
 * )
 * ```
 *
 * @since 0.1.0
 * @category metrics
 */
export const operationDuration: Metric.Metric.Histogram<number> = Metric.fromMetricKey(internal.OPERATION_DURATION)

/**
 * Rate-limit decisions. Tags, in order: `mode`, `limiter`, `decision` (`allowed` or `denied`).
 *
 * @example
 * ```ts
 * import { Metric } from "effect"
 * import { Observability } from "effect-failclosed"
 *
 * const loginDenied = Observability.rateLimitDecisions.pipe(
 *   Metric.tagged("mode", "StrictDistributed"),
 *   Metric.tagged("limiter", "login"),
 *   Metric.tagged("decision", "denied")
 * )
 * ```
 *
 * @since 0.1.0
 * @category metrics
 */
export const rateLimitDecisions: Metric.Metric.Counter<number> = Metric.fromMetricKey(internal.RATE_LIMIT_DECISIONS)

/**
 * Nonces claimed again within their window (each a `ReplayDetected`). Tags, in order: `mode`,
 * `guard`.
 *
 * @example
 * ```ts
 * import { Metric } from "effect"
 * import { Observability } from "effect-failclosed"
 *
 * const webhookReplays = Observability.replaysDetected.pipe(
 *   Metric.tagged("mode", "StrictDistributed"),
 *   Metric.tagged("guard", "webhooks")
 * )
 * ```
 *
 * @since 0.1.0
 * @category metrics
 */
export const replaysDetected: Metric.Metric.Counter<number> = Metric.fromMetricKey(internal.REPLAYS_DETECTED)

/**
 * Keyspace reads answered from a node's near cache (no Redis round trip). Tag: `keyspace`.
 *
 * @example
 * ```ts
 * import { Effect, Metric } from "effect"
 * import { Observability } from "effect-failclosed"
 *
 * const nearHits = Effect.map(
 *   Metric.value(Observability.nearHits.pipe(Metric.tagged("keyspace", "profiles"))),
 *   (state) => state.count
 * )
 * ```
 *
 * @since 0.2.0
 * @category metrics
 */
export const nearHits: Metric.Metric.Counter<number> = Metric.fromMetricKey(near.NEAR_HITS)

/**
 * Reads of a near-cache keyspace that went to Redis (not in the near cache, or the near cache was off). Tag:
 * `keyspace`.
 *
 * @example
 * ```ts
 * import { Metric } from "effect"
 * import { Observability } from "effect-failclosed"
 *
 * const profileMisses = Observability.nearMisses.pipe(Metric.tagged("keyspace", "profiles"))
 * ```
 *
 * @since 0.2.0
 * @category metrics
 */
export const nearMisses: Metric.Metric.Counter<number> = Metric.fromMetricKey(near.NEAR_MISSES)

/**
 * Near-cache entries removed one by one: by an invalidation from Redis, their time to live, or the capacity bound.
 * Tag: `keyspace`.
 *
 * @example
 * ```ts
 * import { Metric } from "effect"
 * import { Observability } from "effect-failclosed"
 *
 * const evictions = Observability.nearEvictions.pipe(Metric.tagged("keyspace", "profiles"))
 * ```
 *
 * @since 0.2.0
 * @category metrics
 */
export const nearEvictions: Metric.Metric.Counter<number> = Metric.fromMetricKey(near.NEAR_EVICTIONS)

/**
 * Near caches emptied at once: a FLUSHALL/FLUSHDB, or the proof of coherence lapsed or came back (connection
 * closed, Redis restarted, heartbeat late). Tag: `keyspace`.
 *
 * @example
 * ```ts
 * import { Metric } from "effect"
 * import { Observability } from "effect-failclosed"
 *
 * const flushes = Observability.nearFlushes.pipe(Metric.tagged("keyspace", "profiles"))
 * ```
 *
 * @since 0.2.0
 * @category metrics
 */
export const nearFlushes: Metric.Metric.Counter<number> = Metric.fromMetricKey(near.NEAR_FLUSHES)

/**
 * `getOrCompute` computations run on this node (docs/stampedes.md): with `lock`, one per key across nodes. Tags, in
 * order: `mode`, `keyspace`.
 *
 * @example
 * ```ts
 * import { Metric } from "effect"
 * import { Observability } from "effect-failclosed"
 *
 * const profileComputes = Observability.computes.pipe(
 *   Metric.tagged("mode", "StrictDistributed"),
 *   Metric.tagged("keyspace", "profiles")
 * )
 * ```
 *
 * @since 0.1.0
 * @category metrics
 */
export const computes: Metric.Metric.Counter<number> = Metric.fromMetricKey(stampede.COMPUTES)

/**
 * `getOrCompute` misses (with `lock`) that found another node computing and waited for its value. Tags, in order:
 * `mode`, `keyspace`.
 *
 * @example
 * ```ts
 * import { Metric } from "effect"
 * import { Observability } from "effect-failclosed"
 *
 * const waits = Observability.lockWaits.pipe(Metric.tagged("mode", "StrictDistributed"), Metric.tagged("keyspace", "profiles"))
 * ```
 *
 * @since 0.1.0
 * @category metrics
 */
export const lockWaits: Metric.Metric.Counter<number> = Metric.fromMetricKey(stampede.LOCK_WAITS)

/**
 * Waiters that took a key's lock after its holder released it without a value (its computation failed) or it
 * expired (the holder died or ran past `lockTimeout`). Tags, in order: `mode`, `keyspace`.
 *
 * @example
 * ```ts
 * import { Metric } from "effect"
 * import { Observability } from "effect-failclosed"
 *
 * const takeovers = Observability.lockTakeovers.pipe(Metric.tagged("mode", "StrictDistributed"))
 * ```
 *
 * @since 0.1.0
 * @category metrics
 */
export const lockTakeovers: Metric.Metric.Counter<number> = Metric.fromMetricKey(stampede.LOCK_TAKEOVERS)

/**
 * Waiters that stopped waiting after `lockTimeout` and computed without the lock. Tags, in order: `mode`, `keyspace`.
 *
 * @example
 * ```ts
 * import { Metric } from "effect"
 * import { Observability } from "effect-failclosed"
 *
 * const gaveUp = Observability.lockTimeouts.pipe(Metric.tagged("mode", "StrictDistributed"))
 * ```
 *
 * @since 0.1.0
 * @category metrics
 */
export const lockTimeouts: Metric.Metric.Counter<number> = Metric.fromMetricKey(stampede.LOCK_TIMEOUTS)

/**
 * Values past their time to live served because the caller asked for it. Tags, in order: `mode`, `keyspace`,
 * `reason` (`revalidate`: staleWhileRevalidate; `error`: staleIfError).
 *
 * @example
 * ```ts
 * import { Metric } from "effect"
 * import { Observability } from "effect-failclosed"
 *
 * const servedOnError = Observability.staleServed.pipe(
 *   Metric.tagged("mode", "StrictDistributed"),
 *   Metric.tagged("keyspace", "profiles"),
 *   Metric.tagged("reason", "error")
 * )
 * ```
 *
 * @since 0.1.0
 * @category metrics
 */
export const staleServed: Metric.Metric.Counter<number> = Metric.fromMetricKey(stampede.STALE_SERVED)
