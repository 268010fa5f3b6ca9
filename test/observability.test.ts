/**
 * Tracing and metrics, as an application sees them through `@effect/opentelemetry` with in-memory exporters: the
 * spans a small program produces (names, attributes, outcomes, nesting), the metrics it updates, and that nothing
 * secret (a tenant id, a key, a value, a subject, a nonce, the Redis password) reaches a span or a metric.
 */
import * as NodeSdk from "@effect/opentelemetry/NodeSdk"
import { describe, expect, it } from "@effect/vitest"
import {
  AggregationTemporality,
  type DataPoint,
  type Histogram,
  InMemoryMetricExporter,
  PeriodicExportingMetricReader,
  type ResourceMetrics
} from "@opentelemetry/sdk-metrics"
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { Duration, Effect, Exit, Layer, Logger, Metric, Schema } from "effect"
import {
  type CacheBackendUnavailable,
  DistributedCache,
  explicitDegraded,
  Keyspace,
  LocalOnly,
  Observability,
  RateLimiter,
  RedisClient,
  ReplayGuard,
  strictDistributed
} from "effect-failclosed"
import { type RedisServer, redisServer } from "./support/RedisServer.js"

// --- what must never be exported ---------------------------------------------------------------------------------------

const TENANT = "tenant-SECRET-7f3a"
const KEY = "key-SECRET-91b2"
const VALUE = "value-SECRET-c0de"
const SUBJECT = "subject-SECRET-44e1"
const NONCE = "nonce-SECRET-0b9d"
const PASSWORD = "password-SECRET-5a6c"
/** how tenant ids appear inside a store key: as they are ([A-Za-z0-9._-]), else `~` and base64url of UTF-16 units */
const ENCODED_TENANT = Buffer.from(TENANT, "utf16le").toString("base64url")
const SECRETS = [TENANT, KEY, VALUE, SUBJECT, NONCE, PASSWORD, ENCODED_TENANT]

// --- an application's OpenTelemetry setup, in memory ---------------------------------------------------------------------

interface Otel {
  readonly layer: Layer.Layer<never>
  readonly spans: () => ReadonlyArray<ReadableSpan>
  /** exports the metrics now and returns the latest (cumulative) export */
  readonly metrics: Effect.Effect<ResourceMetrics>
}

const makeOtel = (): Otel => {
  const spanExporter = new InMemorySpanExporter()
  const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE)
  // exports only when flushed by the test
  const reader = new PeriodicExportingMetricReader({
    exporter: metricExporter,
    exportIntervalMillis: 3_600_000,
    exportTimeoutMillis: 10_000
  })
  return {
    layer: Layer.discard(
      NodeSdk.layer(() => ({
        resource: { serviceName: "effect-failclosed-observability-test" },
        spanProcessor: new SimpleSpanProcessor(spanExporter),
        metricReader: reader
      }))
    ),
    spans: () => spanExporter.getFinishedSpans().filter((span) => span.name.startsWith("effect-failclosed.")),
    metrics: Effect.promise(() => reader.forceFlush()).pipe(
      Effect.map(() => {
        const exported = metricExporter.getMetrics()
        const latest = exported[exported.length - 1]
        if (latest === undefined) throw new Error("no metrics exported")
        return latest
      })
    )
  }
}

interface Exported<A> {
  readonly result: A
  readonly spans: ReadonlyArray<ReadableSpan>
  /** the metrics before and after `program` (the metric registry is process-wide: compare counts) */
  readonly before: ResourceMetrics
  readonly after: ResourceMetrics
}

/**
 * Runs `program` with the OpenTelemetry SDK installed and returns what was exported (read before the SDK shuts down
 * with the scope, which empties the in-memory exporters).
 */
const traced = <A, E, R>(program: Effect.Effect<A, E, R>): Effect.Effect<Exported<A>, E, Exclude<R, never>> => {
  const otel = makeOtel()
  return Effect.gen(function* () {
    const before = yield* otel.metrics
    const result = yield* program
    const spans = [...otel.spans()]
    const after = yield* otel.metrics
    return { result, spans, before, after }
  }).pipe(Effect.provide(otel.layer))
}

const dataPoints = (metrics: ResourceMetrics, name: string): ReadonlyArray<DataPoint<unknown>> =>
  metrics.scopeMetrics.flatMap((scope) =>
    scope.metrics.flatMap((metric) =>
      metric.descriptor.name === name ? (metric.dataPoints as ReadonlyArray<DataPoint<unknown>>) : []
    )
  )

/** the value of the series of `name` whose attributes include `tags` (0 when there is none yet) */
const valueOf = (metrics: ResourceMetrics, name: string, tags: Record<string, string>): number => {
  const matching = dataPoints(metrics, name).filter((point) =>
    Object.entries(tags).every(([k, v]) => point.attributes[k] === v)
  )
  expect(matching.length, `${name} ${JSON.stringify(tags)}`).toBeLessThanOrEqual(1)
  const point = matching[0]
  if (point === undefined) return 0
  return typeof point.value === "number" ? point.value : (point.value as Histogram).count
}

/** every text an exporter would ship: span names, attributes, events, status; metric names and attributes */
const exportedText = (spans: ReadonlyArray<ReadableSpan>, metrics: ResourceMetrics): string =>
  JSON.stringify([
    spans.map((span) => [span.name, span.attributes, span.events, span.status]),
    metrics.scopeMetrics.map((scope) =>
      scope.metrics.map((metric) => [metric.descriptor.name, metric.dataPoints.map((point) => point.attributes)])
    )
  ])

const expectNoSecrets = (spans: ReadonlyArray<ReadableSpan>, metrics: ResourceMetrics) => {
  const text = exportedText(spans, metrics)
  for (const secret of SECRETS) expect(text, secret).not.toContain(secret)
}

const attributesOf = (span: ReadableSpan) => ({
  name: span.name,
  mode: span.attributes["effect_failclosed.mode"],
  keyspace: span.attributes["effect_failclosed.keyspace"],
  limiter: span.attributes["effect_failclosed.limiter"],
  guard: span.attributes["effect_failclosed.guard"],
  backend: span.attributes["effect_failclosed.backend"],
  degraded: span.attributes["effect_failclosed.degraded"],
  outcome: span.attributes["effect_failclosed.outcome"],
  failureReason: span.attributes["effect_failclosed.failure_reason"]
})

/** the spans' attributes, without the ones that are undefined */
const summary = (spans: ReadonlyArray<ReadableSpan>) =>
  spans.map((span) => Object.fromEntries(Object.entries(attributesOf(span)).filter(([, value]) => value !== undefined)))

const silent = Logger.replace(Logger.defaultLogger, Logger.none)

// --- LocalOnly ---------------------------------------------------------------------------------------------------------

describe("observability with LocalOnly", () => {
  const Users = Keyspace.make({
    name: "obs-local-users",
    key: Schema.String,
    value: Schema.String,
    timeToLive: "1 minute",
    maxValueBytes: 64
  })
  const Login = RateLimiter.make({ name: "obs-local-login", limit: 1, window: "1 minute", algorithm: "fixed-window" })
  const Hooks = ReplayGuard.make({ name: "obs-local-hooks", window: "1 minute" })
  const tenant = { tenant: TENANT }

  it.live("every operation is one span with mode, name, backend and outcome; metrics count hits and decisions", () =>
    Effect.gen(function* () {
      const { after: metrics, spans } = yield* Effect.gen(function* () {
        yield* Users.get(KEY, tenant)
        yield* Users.set(KEY, VALUE, tenant)
        yield* Users.get(KEY, tenant)
        // a miss whose computation reads the keyspace (a child span), then a hit
        yield* Users.getOrCompute(KEY + "-2", Effect.as(Users.get(KEY, tenant), VALUE), tenant)
        yield* Users.getOrCompute(KEY + "-2", Effect.succeed("unused"), tenant)
        yield* Users.invalidate(KEY, tenant)
        yield* Users.clear(tenant)
        const tooLarge = yield* Effect.exit(Users.set(KEY, VALUE.repeat(10), tenant))
        expect(Exit.isFailure(tooLarge)).toBe(true)
        expect((yield* Login.consume(SUBJECT, tenant)).allowed).toBe(true)
        expect((yield* Login.consume(SUBJECT, tenant)).allowed).toBe(false)
        yield* Hooks.claim(NONCE, tenant)
        const replay = yield* Effect.flip(Hooks.claim(NONCE, tenant))
        expect(replay._tag).toBe("ReplayDetected")
        // a direct call of the service has a span of its own
        const cache = yield* DistributedCache
        yield* cache.count(`${cache.keyPrefix}:`)
      }).pipe(Effect.provide(LocalOnly), traced)

      const local = { mode: "LocalOnly", backend: "local", degraded: false }
      const users = { ...local, keyspace: "obs-local-users" }
      expect(summary(spans)).toEqual([
        { name: "effect-failclosed.get", ...users, outcome: "miss" },
        { name: "effect-failclosed.set", ...users, outcome: "ok" },
        { name: "effect-failclosed.get", ...users, outcome: "hit" },
        { name: "effect-failclosed.get", ...users, outcome: "hit" },
        { name: "effect-failclosed.getOrCompute", ...users, outcome: "miss" },
        { name: "effect-failclosed.getOrCompute", ...users, outcome: "hit" },
        { name: "effect-failclosed.invalidate", ...users, outcome: "ok" },
        { name: "effect-failclosed.clear", ...users, outcome: "ok" },
        { name: "effect-failclosed.set", ...users, outcome: "invalid" },
        { name: "effect-failclosed.rateLimit", ...local, limiter: "obs-local-login", outcome: "ok" },
        { name: "effect-failclosed.rateLimit", ...local, limiter: "obs-local-login", outcome: "denied" },
        { name: "effect-failclosed.claim", ...local, guard: "obs-local-hooks", outcome: "ok" },
        { name: "effect-failclosed.claim", ...local, guard: "obs-local-hooks", outcome: "replay" },
        { name: "effect-failclosed.count", ...local, outcome: "ok" }
      ])
      // the read inside the computation is a child of the getOrCompute span
      const nested = spans[3]!
      const computed = spans[4]!
      expect(nested.parentSpanContext?.spanId).toBe(computed.spanContext().spanId)
      expect(computed.parentSpanContext).toBeUndefined()

      const tags = { mode: "LocalOnly", keyspace: "obs-local-users" }
      // hits: get, the nested get, getOrCompute; misses: get, getOrCompute
      expect(valueOf(metrics, "effect_failclosed_hits", tags)).toBe(3)
      expect(valueOf(metrics, "effect_failclosed_misses", tags)).toBe(2)
      const login = { mode: "LocalOnly", limiter: "obs-local-login" }
      expect(valueOf(metrics, "effect_failclosed_rate_limit_decisions", { ...login, decision: "allowed" })).toBe(1)
      expect(valueOf(metrics, "effect_failclosed_rate_limit_decisions", { ...login, decision: "denied" })).toBe(1)
      expect(
        valueOf(metrics, "effect_failclosed_replays_detected", { mode: "LocalOnly", guard: "obs-local-hooks" })
      ).toBe(1)
      expectNoSecrets(spans, metrics)
    })
  )

  it.effect("metrics are kept without a tracer, and read with the exported definitions", () =>
    Effect.gen(function* () {
      const Items = Keyspace.make({
        name: "obs-local-untraced",
        key: Schema.Number,
        value: Schema.Number,
        timeToLive: "1 minute"
      })
      const hits = Observability.hits.pipe(Metric.tagged("mode", "LocalOnly"), Metric.tagged("keyspace", Items.name))
      const misses = Observability.misses.pipe(
        Metric.tagged("mode", "LocalOnly"),
        Metric.tagged("keyspace", Items.name)
      )
      yield* Effect.gen(function* () {
        yield* Items.get(1)
        yield* Items.set(1, 1)
        yield* Items.get(1)
        yield* Items.get(1)
      }).pipe(Effect.provide(LocalOnly))
      expect((yield* Metric.value(hits)).count).toBe(2)
      expect((yield* Metric.value(misses)).count).toBe(1)
    })
  )
})

// --- Redis modes -------------------------------------------------------------------------------------------------------

const COMMAND_TIMEOUT_MS = 300
/** long enough that the call right after a failure is always in the cooldown */
const COOLDOWN = Duration.seconds(30)

const urlOf = (server: RedisServer) => `redis://:${PASSWORD}@127.0.0.1:${server.port}`

const clientLayer = (server: RedisServer) =>
  RedisClient.layer({
    url: urlOf(server),
    commandTimeout: Duration.millis(COMMAND_TIMEOUT_MS),
    connectTimeout: Duration.millis(300),
    maxReconnectDelay: Duration.millis(100),
    startupTimeout: Duration.millis(500)
  })

/** starts a password-protected redis-server owned by the test */
const protectedRedis = Effect.gen(function* () {
  const server = yield* redisServer()
  yield* Effect.promise(() => server.command("CONFIG", "SET", "requirepass", PASSWORD))
  return server
})

const redisCli = (server: RedisServer, ...args: Array<string>) =>
  Effect.promise(() => server.command("-a", PASSWORD, "--no-auth-warning", ...args))

/** the series an assertion looks at, before and after the program (the metric registry is process-wide) */
const delta = (before: ResourceMetrics, after: ResourceMetrics, name: string, tags: Record<string, string>) =>
  valueOf(after, name, tags) - valueOf(before, name, tags)

describe("observability with StrictDistributed on a real Redis", () => {
  const Users = Keyspace.make({
    name: "obs-strict-users",
    key: Schema.String,
    value: Schema.String,
    timeToLive: "1 minute"
  })
  const tenant = { tenant: TENANT }

  it.scopedLive("spans and metrics of hits, a refused write, an outage and the cooldown after it", () =>
    Effect.gen(function* () {
      const server = yield* protectedRedis
      const {
        after,
        before,
        result: [failures, startup],
        spans
      } = yield* Effect.gen(function* () {
        yield* Users.get(KEY, tenant)
        yield* Users.set(KEY, VALUE, tenant)
        yield* Users.get(KEY, tenant)
        // Redis answers with an error (out of memory): refused, not an outage
        yield* redisCli(server, "CONFIG", "SET", "maxmemory", "1")
        const rejected = yield* Effect.flip(Users.set(KEY, VALUE, tenant))
        yield* redisCli(server, "CONFIG", "SET", "maxmemory", "0")
        yield* Effect.promise(() => server.kill())
        const unavailable = yield* Effect.flip(Users.get(KEY, tenant))
        const cooldown = yield* Effect.flip(Users.get(KEY, tenant))
        return [rejected, unavailable, cooldown] as const
      }).pipe(
        Effect.provide(strictDistributed({ cooldown: COOLDOWN }).pipe(Layer.provide(clientLayer(server)))),
        // then a Layer started while Redis is down: the startup event is counted too
        Effect.zip(
          Effect.exit(Effect.scoped(Layer.build(strictDistributed().pipe(Layer.provide(clientLayer(server))))))
        ),
        Effect.provide(silent),
        traced
      )
      for (const failure of failures) expect((failure as CacheBackendUnavailable)._tag).toBe("CacheBackendUnavailable")
      expect(Exit.isFailure(startup)).toBe(true)

      const redis = { mode: "StrictDistributed", keyspace: "obs-strict-users", backend: "redis", degraded: false }
      expect(summary(spans)).toEqual([
        { name: "effect-failclosed.get", ...redis, outcome: "miss" },
        { name: "effect-failclosed.set", ...redis, outcome: "ok" },
        { name: "effect-failclosed.get", ...redis, outcome: "hit" },
        { name: "effect-failclosed.set", ...redis, outcome: "rejected", failureReason: "rejected" },
        { name: "effect-failclosed.get", ...redis, outcome: "unavailable", failureReason: "unavailable" },
        { name: "effect-failclosed.get", ...redis, outcome: "unavailable", failureReason: "cooldown" }
      ])
      // failed operations are failed spans
      expect(spans.slice(3).map((span) => span.status.code)).toEqual([2, 2, 2])

      const strict = { mode: "StrictDistributed" }
      const users = { ...strict, keyspace: "obs-strict-users" }
      expect(valueOf(after, "effect_failclosed_hits", users)).toBe(1)
      expect(valueOf(after, "effect_failclosed_misses", users)).toBe(1)
      const failuresOf = (operation: string, reason: string) =>
        delta(before, after, "effect_failclosed_failures", { ...strict, operation, reason })
      expect([failuresOf("set", "rejected"), failuresOf("get", "unavailable"), failuresOf("get", "cooldown")]).toEqual([
        1, 1, 1
      ])
      const events = (event: string) => delta(before, after, "effect_failclosed_security_events", { ...strict, event })
      expect([events("BACKEND_UNAVAILABLE_AT_RUNTIME"), events("BACKEND_UNAVAILABLE_AT_STARTUP")]).toEqual([1, 1])
      expect(valueOf(after, "effect_failclosed_backend_unavailable", strict)).toBe(1)
      // round trips timed: get (miss, hit, the failed one) and set (ok, refused); the cooldown refusal is not
      const durations = (operation: string) =>
        delta(before, after, "effect_failclosed_operation_duration", { ...strict, operation })
      expect([durations("get"), durations("set")]).toEqual([3, 2])
      expect(dataPoints(after, "effect_failclosed_operation_duration")[0]?.attributes["time_unit"]).toBe("milliseconds")

      expectNoSecrets(spans, after)
    })
  )
})

describe("observability with ExplicitDegraded on a real Redis", () => {
  const Users = Keyspace.make({
    name: "obs-degraded-users",
    key: Schema.String,
    value: Schema.String,
    timeToLive: "1 minute"
  })
  const tenant = { tenant: TENANT }

  it.scopedLive("results served by the fallback are marked degraded in spans, and the gauge says degraded", () =>
    Effect.gen(function* () {
      const server = yield* protectedRedis
      const { after, before, spans } = yield* Effect.gen(function* () {
        yield* Users.set(KEY, VALUE, tenant)
        yield* Effect.promise(() => server.kill())
        yield* Users.get(KEY, tenant)
        yield* Users.set(KEY, VALUE, tenant)
        yield* Users.get(KEY, tenant)
        yield* Effect.flip(Users.invalidate(KEY, tenant))
      }).pipe(
        Effect.provide(explicitDegraded({ cooldown: COOLDOWN }).pipe(Layer.provide(clientLayer(server)))),
        Effect.provide(silent),
        traced
      )

      const mode = { mode: "ExplicitDegraded", keyspace: "obs-degraded-users" }
      const fallback = { ...mode, backend: "local_degraded", degraded: true }
      expect(summary(spans)).toEqual([
        { name: "effect-failclosed.set", ...mode, backend: "redis", degraded: false, outcome: "ok" },
        { name: "effect-failclosed.get", ...fallback, outcome: "miss" },
        { name: "effect-failclosed.set", ...fallback, outcome: "ok" },
        { name: "effect-failclosed.get", ...fallback, outcome: "hit" },
        {
          name: "effect-failclosed.invalidate",
          ...mode,
          backend: "redis",
          degraded: false,
          outcome: "unavailable",
          failureReason: "cooldown"
        }
      ])

      const degraded = { mode: "ExplicitDegraded" }
      expect(valueOf(after, "effect_failclosed_degraded", degraded)).toBe(1)
      expect(
        delta(before, after, "effect_failclosed_security_events", {
          ...degraded,
          event: "BACKEND_UNAVAILABLE_AT_RUNTIME"
        })
      ).toBe(1)
      const failuresOf = (operation: string, reason: string) =>
        delta(before, after, "effect_failclosed_failures", { ...degraded, operation, reason })
      expect([
        failuresOf("get", "unavailable"),
        failuresOf("set", "cooldown"),
        failuresOf("get", "cooldown"),
        failuresOf("invalidate", "cooldown")
      ]).toEqual([1, 1, 1, 1])
      expectNoSecrets(spans, after)
    })
  )
})
