/**
 * The three mode Layers. The failure policy of a cache is chosen when Layers are composed and
 * is visible in the types:
 *
 * - `StrictDistributed: Layer<DistributedCache, CacheBackendUnavailable, RedisClient>`
 * - `ExplicitDegraded: Layer<DistributedCache, never, RedisClient>`
 * - `LocalOnly: Layer<DistributedCache>`
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { DistributedCache } from "./DistributedCache.js"
import { CacheBackendUnavailable } from "./errors.js"
import { Breaker, DEFAULT_KEY_PREFIX, KEY_PREFIX_PATTERN, makeMemoryStore } from "@effect-failclosed/core"
import { emitSecurityEvent } from "./internal/observability.js"
import { makeDegraded, makeLocal, makeStrict } from "./internal/policy.js"
import { makeTracking } from "./internal/redis/tracking.js"
import { redisEffects, redisStoreOf } from "./internal/store.js"
import { optionChecks } from "./internal/options.js"
import { RedisClient, type RedisClientService } from "./RedisClient.js"

/**
 * Options of `strictDistributed`.
 *
 * @example
 * ```ts
 * import type { StrictDistributedOptions } from "effect-failclosed"
 *
 * const options: StrictDistributedOptions = { keyPrefix: "myapp", cooldown: "1 second", startupTimeout: "3 seconds" }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface StrictDistributedOptions {
  /** the first segment of every Redis key (`[A-Za-z0-9._-]{1,64}`, default `"fc"`) */
  readonly keyPrefix?: string | undefined
  /** after a failure, calls fail at once for this long before a probe (default 500 millis) */
  readonly cooldown?: Duration.DurationInput | undefined
  /** how long the startup probe waits for Redis (default: the client's `startupTimeout`) */
  readonly startupTimeout?: Duration.DurationInput | undefined
  /**
   * Replay claims and rate-limit decisions are answered only once this many replicas have acknowledged them (Redis
   * `WAIT`, on the master that took them); when fewer do within `replicaTimeout` the call fails closed with
   * `CacheBackendUnavailable`. Redis replicates asynchronously: without this, a claim or a decision answered just
   * before a failover can be lost with the master. Default 0 (no wait). Cache reads and writes never wait.
   */
  readonly waitForReplicas?: number | undefined
  /** how long a claim or decision waits for the replicas: less than the client's `commandTimeout` (default: half of it) */
  readonly replicaTimeout?: Duration.DurationInput | undefined
}

/**
 * Options of `explicitDegraded`.
 *
 * @example
 * ```ts
 * import type { ExplicitDegradedOptions } from "effect-failclosed"
 *
 * const options: ExplicitDegradedOptions = { keyPrefix: "myapp", cooldown: "1 second", localCapacity: 50_000 }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface ExplicitDegradedOptions extends StrictDistributedOptions {
  /** entries the node-local fallback holds at most (LRU, default 10,000) */
  readonly localCapacity?: number | undefined
}

/**
 * Options of `localOnly`.
 *
 * @example
 * ```ts
 * import type { LocalOnlyOptions } from "effect-failclosed"
 *
 * const options: LocalOnlyOptions = { capacity: 1_000 }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface LocalOnlyOptions {
  /** the first segment of every key (default `"fc"`) */
  readonly keyPrefix?: string | undefined
  /** entries held at most (LRU, default 10,000) */
  readonly capacity?: number | undefined
}

const check = optionChecks("cache mode")

const keyPrefixOf = (prefix: string | undefined): string => {
  const p = prefix ?? DEFAULT_KEY_PREFIX
  if (!KEY_PREFIX_PATTERN.test(p))
    check.invalid(`keyPrefix must match ${KEY_PREFIX_PATTERN} (got ${JSON.stringify(p.slice(0, 80))})`)
  return p
}

/** validated at construction; the timeout is checked against the client's commandTimeout when the Layer is built */
const replicasOf = (options: StrictDistributedOptions) => {
  const count = options.waitForReplicas ?? 0
  if (!Number.isSafeInteger(count) || count < 0) {
    check.invalid("waitForReplicas must be a non-negative integer")
  }
  const timeout =
    options.replicaTimeout === undefined
      ? undefined
      : check.duration("replicaTimeout", options.replicaTimeout, "timeout")
  return (redis: RedisClientService) => {
    if (count === 0) return Effect.succeed({})
    const commandTimeout = Duration.toMillis(redis.commandTimeout)
    const millis = timeout ?? Math.max(1, Math.floor(commandTimeout / 2))
    if (millis >= commandTimeout) {
      return Effect.dieMessage("effect-failclosed: replicaTimeout must be less than the client's commandTimeout")
    }
    return Effect.succeed({ waitForReplicas: count, replicaTimeoutMillis: Math.ceil(millis) })
  }
}

const startupProbe = (redis: RedisClientService, timeout: Duration.Duration) =>
  Effect.zipRight(
    redis.awaitReady(timeout),
    Effect.mapError(redisEffects(redisStoreOf(redis)).ping, (f) => f.reason)
  )

/**
 * What both Redis modes share: options validated when the Layer is made (a programmer error
 * throws before anything touches Redis), then, when it is built, the client, its store, a
 * breaker, and the outcome of the startup probe (`undefined` when Redis answered, else why not).
 */
const redisModeSettings = (options: StrictDistributedOptions) => {
  const keyPrefix = keyPrefixOf(options.keyPrefix)
  const cooldownMillis = check.duration("cooldown", options.cooldown, "timeout", "500 millis")
  const startupTimeout =
    options.startupTimeout === undefined
      ? undefined
      : Duration.millis(check.duration("startupTimeout", options.startupTimeout, "timeout"))
  const replicas = replicasOf(options)
  const connect = Effect.gen(function* () {
    const redis = yield* RedisClient
    const clock = yield* Effect.clock
    const store = redisEffects(redisStoreOf(redis, yield* replicas(redis)))
    // the breaker's time is Effect's Clock: TestClock drives the cooldown
    const breaker = new Breaker(() => clock.unsafeCurrentTimeMillis(), cooldownMillis)
    const startupFailure = yield* startupProbe(redis, startupTimeout ?? redis.startupTimeout).pipe(
      Effect.as(undefined),
      Effect.catchAll((reason) => Effect.succeed(reason))
    )
    // near caches: the invalidation connection, opened when a near-cache keyspace first uses this cache
    const tracking = yield* makeTracking(redis.client)
    return { redis, clock, store, breaker, startupFailure, tracking }
  })
  return { keyPrefix, connect }
}

/**
 * Fail closed: every operation goes to Redis; when Redis does not answer, the operation fails
 * with `CacheBackendUnavailable`, further calls fail at once for the cooldown, and a probe lets
 * traffic back when Redis answers. No local state, ever. The Layer fails at startup when Redis
 * is unavailable.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { RedisClient, strictDistributed } from "effect-failclosed"
 *
 * const CacheLive = strictDistributed({ cooldown: "1 second", keyPrefix: "myapp" }).pipe(
 *   Layer.provide(RedisClient.layer({ url: "redis://127.0.0.1:6379" }))
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const strictDistributed = (
  options: StrictDistributedOptions = {}
): Layer.Layer<DistributedCache, CacheBackendUnavailable, RedisClient> => {
  const { connect, keyPrefix } = redisModeSettings(options)
  return Layer.scoped(
    DistributedCache,
    Effect.gen(function* () {
      const { breaker, redis, startupFailure, store, tracking } = yield* connect
      if (startupFailure !== undefined) {
        yield* emitSecurityEvent({
          event: "BACKEND_UNAVAILABLE_AT_STARTUP",
          mode: "StrictDistributed",
          detail: `Redis at ${redis.description} is unavailable (${startupFailure}); the Layer fails closed`
        })
        return yield* new CacheBackendUnavailable({
          mode: "StrictDistributed",
          operation: "startup",
          reason: startupFailure
        })
      }
      return makeStrict({ store, breaker, keyPrefix, tracking })
    })
  )
}

/**
 * Opt-in degradation: when Redis is unavailable (at startup or at runtime), get/set (and rate
 * limits, replay claims and getOrCompute locks) are served by a node-local fallback, every such result is marked
 * `degraded: true`, and one security event is logged per transition. invalidate and clear
 * still fail with `CacheBackendUnavailable`. When Redis answers again the fallback's contents
 * are dropped and `BACKEND_RECOVERED` is logged. The Layer cannot fail.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { explicitDegraded, RedisClient } from "effect-failclosed"
 *
 * const CacheLive = explicitDegraded({ localCapacity: 50_000 }).pipe(Layer.provide(RedisClient.layerConfig()))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const explicitDegraded = (
  options: ExplicitDegradedOptions = {}
): Layer.Layer<DistributedCache, never, RedisClient> => {
  const { connect, keyPrefix } = redisModeSettings(options)
  const capacity = check.positiveInteger("localCapacity", options.localCapacity, 10_000)
  return Layer.scoped(
    DistributedCache,
    Effect.gen(function* () {
      const { breaker, clock, redis, startupFailure, store, tracking } = yield* connect
      if (startupFailure !== undefined) {
        breaker.openAtStartup()
        yield* emitSecurityEvent({
          event: "BACKEND_UNAVAILABLE_AT_STARTUP",
          mode: "ExplicitDegraded",
          detail: `Redis at ${redis.description} is unavailable (${startupFailure}); serving node-local, marked degraded`
        })
      }
      return makeDegraded({
        store,
        fallback: makeMemoryStore({ capacity, now: () => clock.unsafeCurrentTimeMillis() }),
        breaker,
        keyPrefix,
        tracking
      })
    })
  )
}

/**
 * Memory only, for tests and single-process programs: never touches Redis, and its Layer does
 * not require a `RedisClient`. Results are marked `backend: "local"`.
 *
 * @example
 * ```ts
 * import { localOnly } from "effect-failclosed"
 *
 * const TestCache = localOnly({ capacity: 1_000 })
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const localOnly = (options: LocalOnlyOptions = {}): Layer.Layer<DistributedCache> => {
  const keyPrefix = keyPrefixOf(options.keyPrefix)
  const capacity = check.positiveInteger("capacity", options.capacity, 10_000)
  return Layer.effect(
    DistributedCache,
    Effect.map(Effect.clock, (clock) =>
      makeLocal(makeMemoryStore({ capacity, now: () => clock.unsafeCurrentTimeMillis() }), keyPrefix)
    )
  )
}

/**
 * `strictDistributed()` with defaults: the default mode.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { RedisClient, StrictDistributed } from "effect-failclosed"
 *
 * const CacheLive = StrictDistributed.pipe(Layer.provide(RedisClient.layerConfig()))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const StrictDistributed: Layer.Layer<DistributedCache, CacheBackendUnavailable, RedisClient> =
  strictDistributed()

/**
 * `explicitDegraded()` with defaults.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { ExplicitDegraded, RedisClient } from "effect-failclosed"
 *
 * const CacheLive = ExplicitDegraded.pipe(Layer.provide(RedisClient.layer()))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const ExplicitDegraded: Layer.Layer<DistributedCache, never, RedisClient> = explicitDegraded()

/**
 * `localOnly()` with defaults.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { DistributedCache, LocalOnly } from "effect-failclosed"
 *
 * const stats = Effect.flatMap(DistributedCache, (c) => c.stats).pipe(Effect.provide(LocalOnly))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const LocalOnly: Layer.Layer<DistributedCache> = localOnly()
