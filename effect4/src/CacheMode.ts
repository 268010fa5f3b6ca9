/**
 * The three modes as Layers of the `DistributedCache` service. What happens when Redis is unavailable is chosen
 * here, when Layers are composed, and it shows in the types: `StrictDistributed` may fail at startup and needs a
 * `RedisClient`; `ExplicitDegraded` cannot fail at startup; `LocalOnly` needs nothing. The same names and options as
 * `effect-failclosed`'s `CacheMode`.
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { DEFAULT_KEY_PREFIX, KEY_PREFIX_PATTERN, Tracking } from "@effect-failclosed/core"

import { DistributedCache } from "./DistributedCache.js"
import { CacheBackendUnavailable } from "./errors.js"
import { makeBreaker, makeMemoryStore, makeRedisStore } from "./internal/coreStore.js"
import { optionChecks } from "./internal/options.js"
import { makeDegraded, makeLocal, makeStrict } from "./internal/policy.js"
import { RedisClient, type RedisClientService } from "./RedisClient.js"
import * as SecurityEvent from "./SecurityEvent.js"

/**
 * The options of {@link strictDistributed}.
 *
 * @example
 * ```ts
 * import type { StrictDistributedOptions } from "effect-failclosed-effect4"
 *
 * const options: StrictDistributedOptions = { keyPrefix: "checkout", cooldown: "1 second" }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface StrictDistributedOptions {
  /** the prefix of every key (default `"fc"`): nodes of both lines share state when their prefixes match */
  readonly keyPrefix?: string | undefined
  /** after a failure, how long calls fail at once without touching Redis (default 500 millis) */
  readonly cooldown?: Duration.Input | undefined
  /** how long the Layer waits for Redis at startup (default: the client's `startupTimeout`) */
  readonly startupTimeout?: Duration.Input | undefined
}

/**
 * The options of {@link explicitDegraded}.
 *
 * @since 0.1.0
 * @category models
 */
export interface ExplicitDegradedOptions extends StrictDistributedOptions {
  /** entries the node-local fallback holds (default 10 000) */
  readonly localCapacity?: number | undefined
}

/**
 * The options of {@link localOnly}.
 *
 * @since 0.1.0
 * @category models
 */
export interface LocalOnlyOptions {
  readonly keyPrefix?: string | undefined
  /** entries held (default 10 000; the least recently used go first) */
  readonly capacity?: number | undefined
}

const check = optionChecks("cache mode")

const keyPrefixOf = (prefix: string | undefined): string => {
  const p = prefix ?? DEFAULT_KEY_PREFIX
  if (!KEY_PREFIX_PATTERN.test(p)) {
    check.invalid(`keyPrefix must match ${KEY_PREFIX_PATTERN} (got ${JSON.stringify(p.slice(0, 80))})`)
  }
  return p
}

const now = Effect.clockWith((clock) => Effect.succeed(() => clock.currentTimeMillisUnsafe()))

const redisModeSettings = (options: StrictDistributedOptions) => {
  const keyPrefix = keyPrefixOf(options.keyPrefix)
  const cooldownMillis = check.duration("cooldown", options.cooldown, "timeout", "500 millis")
  const startupMillis =
    options.startupTimeout === undefined
      ? undefined
      : check.duration("startupTimeout", options.startupTimeout, "timeout")
  const connect = Effect.gen(function* () {
    const redis: RedisClientService = yield* RedisClient
    const clock = yield* now
    const store = makeRedisStore(redis)
    const breaker = makeBreaker(clock, cooldownMillis)
    const timeout = startupMillis === undefined ? redis.startupTimeout : Duration.millis(startupMillis)
    const startupFailure = yield* redis.awaitReady(timeout).pipe(
      Effect.andThen(Effect.mapError(store.ping, (f) => f.reason)),
      Effect.as(undefined),
      Effect.catch((reason: string) => Effect.succeed(reason))
    )
    // near caches: the invalidation connections (the core's), opened when a near-cache keyspace first registers
    const tracking = yield* Effect.acquireRelease(
      Effect.sync(() => new Tracking(redis.client)),
      (t) => Effect.sync(() => t.close())
    )
    return { redis, clock, store, breaker, startupFailure, tracking }
  })
  return { keyPrefix, connect }
}

/**
 * StrictDistributed with options: Redis or nothing. The Layer fails with `CacheBackendUnavailable` when Redis does
 * not answer at startup; at runtime an unavailable Redis fails the operation (then a short cooldown fails calls at
 * once, and a probe lets traffic back when Redis answers).
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { RedisClient, strictDistributed } from "effect-failclosed-effect4"
 *
 * const cache = strictDistributed({ keyPrefix: "checkout" }).pipe(Layer.provide(RedisClient.layerConfig()))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const strictDistributed = (
  options: StrictDistributedOptions = {}
): Layer.Layer<DistributedCache, CacheBackendUnavailable, RedisClient> => {
  const { connect, keyPrefix } = redisModeSettings(options)
  return Layer.effect(
    DistributedCache,
    Effect.gen(function* () {
      const { breaker, redis, startupFailure, store, tracking } = yield* connect
      if (startupFailure !== undefined) {
        yield* SecurityEvent.emit({
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
 * ExplicitDegraded with options: Redis, and a node-local fallback while it is unavailable — opted into here, marked
 * on every result it serves (`degraded: true`), announced by security events. Invalidate and clear still fail.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { explicitDegraded, RedisClient } from "effect-failclosed-effect4"
 *
 * const cache = explicitDegraded({ localCapacity: 1000 }).pipe(Layer.provide(RedisClient.layerConfig()))
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
  return Layer.effect(
    DistributedCache,
    Effect.gen(function* () {
      const { breaker, clock, redis, startupFailure, store, tracking } = yield* connect
      if (startupFailure !== undefined) {
        breaker.openAtStartup()
        yield* SecurityEvent.emit({
          event: "BACKEND_UNAVAILABLE_AT_STARTUP",
          mode: "ExplicitDegraded",
          detail: `Redis at ${redis.description} is unavailable (${startupFailure}); serving node-local, marked degraded`
        })
      }
      return makeDegraded({ store, fallback: makeMemoryStore({ capacity, now: clock }), breaker, keyPrefix, tracking })
    })
  )
}

/**
 * LocalOnly with options: node-local memory, no Redis (the Layer does not even require a `RedisClient`). For tests
 * and single-node tools.
 *
 * @example
 * ```ts
 * import { localOnly } from "effect-failclosed-effect4"
 *
 * const cache = localOnly({ capacity: 100 })
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
    Effect.map(now, (clock) => makeLocal(makeMemoryStore({ capacity, now: clock }), keyPrefix))
  )
}

/**
 * StrictDistributed with defaults (key prefix `"fc"`, cooldown 500 millis).
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { RedisClient, StrictDistributed } from "effect-failclosed-effect4"
 *
 * const cache = StrictDistributed.pipe(Layer.provide(RedisClient.layer({ url: "redis://127.0.0.1:6380" })))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const StrictDistributed: Layer.Layer<DistributedCache, CacheBackendUnavailable, RedisClient> =
  strictDistributed()

/**
 * ExplicitDegraded with defaults.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { ExplicitDegraded, RedisClient } from "effect-failclosed-effect4"
 *
 * const cache = ExplicitDegraded.pipe(Layer.provide(RedisClient.layerConfig()))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const ExplicitDegraded: Layer.Layer<DistributedCache, never, RedisClient> = explicitDegraded()

/**
 * LocalOnly with defaults.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { DistributedCache, LocalOnly } from "effect-failclosed-effect4"
 *
 * const mode = DistributedCache.use((cache) => Effect.succeed(cache.mode)).pipe(Effect.provide(LocalOnly))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const LocalOnly: Layer.Layer<DistributedCache> = localOnly()
