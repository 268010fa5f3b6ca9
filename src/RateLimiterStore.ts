/**
 * `@effect/experimental`'s `RateLimiterStore` backed by effect-failclosed's atomic Redis
 * decisions, so `RateLimiter.consume`, `makeWithRateLimiter` and `makeSleep` keep their code and
 * get the failure policy of the mode Layer that provides the `DistributedCache`: under
 * `StrictDistributed` a Redis outage fails the call (fails closed) within the client's command
 * timeout, and no decision is taken from node-local state. Swap
 * `RateLimiter/Redis.layerStore(redisOptions)` for {@link layer}.
 *
 * This module is a sub-path export (`effect-failclosed/RateLimiterStore`): the package root does
 * not import it, so `@effect/experimental` is needed only by the applications that use it.
 *
 * Each call is one decision of this library's `RateLimiter` (one Lua script, server time): the
 * store's `name` is the limiter name and `@effect/experimental`'s `key` is the subject (hashed
 * into the key). How the two algorithms of `@effect/experimental` map:
 *
 * - `"fixed-window"`, `onExceeded: "fail"`: our fixed window of `limit` per `window`. Windows are
 *   aligned to the Redis server's clock (multiples of the window since the epoch) instead of
 *   starting at a key's first request; at most `limit` tokens are taken per window either way.
 *   `retryAfter` is exact (the end of the window); `resetAfter` of an allowed call is computed
 *   from this process's clock (exact when it agrees with the server's).
 * - `"token-bucket"`, `onExceeded: "fail"`: our token bucket of `limit` tokens refilled at
 *   `limit` per `window` (one token per `window / limit`, the same refill rate). `remaining` is
 *   exact; `retryAfter` is computed by `@effect/experimental` as `missing tokens × refill rate`,
 *   which may exceed the exact wait by less than one refill interval.
 * - `onExceeded: "delay"`: `@effect/experimental` reserves future capacity (the count or bucket
 *   goes over the limit) and returns how long to wait. This store never takes more than the
 *   limit: it waits (with `Effect.sleep`, interruptible) until a decision allows the call, then
 *   takes it, and returns a result whose `delay` is zero. A token bucket waits for its own
 *   bucket; a fixed window, for which the store is not told the limit in this mode, is paced at
 *   one token per `window / limit` (at most `limit` per window, without the burst).
 *
 * Errors are `@effect/experimental`'s: an unavailable Redis is a `RateLimitStoreError` whose
 * `cause` is the `CacheBackendUnavailable` ({@link backendUnavailable} extracts it); input the
 * store rejects before deciding (an empty or over-long key, a non-integer token count) is a
 * `RateLimitStoreError` whose `cause` is the `RateLimitInputInvalid`.
 *
 * @since 0.1.0
 */
import * as RateLimiter from "@effect/experimental/RateLimiter"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { DistributedCache, type DistributedCacheService, type RateLimitAlgorithm } from "./DistributedCache.js"
import { CacheBackendUnavailable } from "./errors.js"
import { optionChecks } from "./internal/options.js"
import * as Limiter from "./RateLimiter.js"

/**
 * Options of {@link make} and {@link layer}.
 *
 * @example
 * ```ts
 * import type { RateLimiterStoreOptions } from "effect-failclosed/RateLimiterStore"
 *
 * const options: RateLimiterStoreOptions = { name: "api", maxKeyLength: 256 }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface RateLimiterStoreOptions {
  /**
   * names the store's limiters (default `"effect-experimental"`): part of every key, in the same
   * namespace as the names of `RateLimiter.make`
   */
  readonly name?: string | undefined
  /** longest `key` accepted, in UTF-16 code units (default 1,024) */
  readonly maxKeyLength?: number | undefined
}

/**
 * Returns the `CacheBackendUnavailable` behind a `RateLimiterError` of this store, if that is
 * what it was: the way back from `@effect/experimental`'s error to the cache's mode and reason
 * (for example to answer 503 rather than 429).
 *
 * @example
 * ```ts
 * import type * as ExperimentalRateLimiter from "@effect/experimental/RateLimiter"
 * import { Option } from "effect"
 * import { backendUnavailable } from "effect-failclosed/RateLimiterStore"
 *
 * const status = (error: ExperimentalRateLimiter.RateLimiterError) =>
 *   error.reason === "Exceeded" ? 429 : Option.isSome(backendUnavailable(error)) ? 503 : 500
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export const backendUnavailable = (error: RateLimiter.RateLimiterError): Option.Option<CacheBackendUnavailable> =>
  error.reason === "StoreError" && error.cause instanceof CacheBackendUnavailable
    ? Option.some(error.cause)
    : Option.none()

const storeError = (error: CacheBackendUnavailable | Limiter.RateLimitInputInvalid) =>
  new RateLimiter.RateLimitStoreError({ message: error.message, cause: error })

const PACED_SUFFIX = ":paced"

/** our limiters, one per (algorithm, limit, window): the key layout does not depend on limit or window */
const LIMITER_MEMO_SIZE = 1024

const makeService = (
  cache: DistributedCacheService,
  name: string,
  maxSubjectLength: number
): RateLimiterStore["Type"] => {
  const limiters = new Map<string, Limiter.RateLimiter>()
  const limiterOf = (
    limiterName: string,
    algorithm: RateLimitAlgorithm,
    limit: number,
    windowMillis: number
  ): Limiter.RateLimiter | RateLimiter.RateLimitStoreError => {
    const id = `${limiterName}|${algorithm}|${limit}|${windowMillis}`
    let limiter = limiters.get(id)
    if (limiter === undefined) {
      try {
        limiter = Limiter.make({ name: limiterName, algorithm, limit, window: windowMillis, maxSubjectLength })
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error)
        return new RateLimiter.RateLimitStoreError({ message, cause: error })
      }
      if (limiters.size >= LIMITER_MEMO_SIZE) limiters.clear()
      limiters.set(id, limiter)
    }
    return limiter
  }

  const decide = (
    limiter: Limiter.RateLimiter | RateLimiter.RateLimitStoreError,
    key: string,
    cost: number
  ): Effect.Effect<Limiter.RateLimitResult, RateLimiter.RateLimitStoreError> =>
    limiter instanceof RateLimiter.RateLimitStoreError
      ? Effect.fail(limiter)
      : limiter.consume(key, { cost }).pipe(Effect.provideService(DistributedCache, cache), Effect.mapError(storeError))

  /** decides until a decision allows the call, sleeping the exact wait in between */
  const untilAllowed = (
    limiter: Limiter.RateLimiter | RateLimiter.RateLimitStoreError,
    key: string,
    cost: number
  ): Effect.Effect<Limiter.RateLimitResult, RateLimiter.RateLimitStoreError> =>
    Effect.flatMap(decide(limiter, key, cost), (result) =>
      result.allowed
        ? Effect.succeed(result)
        : Effect.zipRight(Effect.sleep(result.retryAfter), untilAllowed(limiter, key, cost))
    )

  /** whole milliseconds of `refillRate × limit`: the window `@effect/experimental` divided */
  const windowOf = (refillRate: Duration.Duration, limit: number) =>
    Math.ceil(Duration.toMillis(refillRate) * limit - 1e-6)

  const paceName = name + PACED_SUFFIX

  return {
    fixedWindow: (options) => {
      const refillMillis = Duration.toMillis(options.refillRate)
      if (options.limit === undefined) {
        // onExceeded "delay": the limit is not given; pace at one token per refill interval
        if (!Number.isSafeInteger(options.tokens) || options.tokens <= 0) {
          return Effect.fail(new RateLimiter.RateLimitStoreError({ message: "tokens must be a positive integer" }))
        }
        const pacer = limiterOf(paceName, "token-bucket", 1, Math.ceil(refillMillis - 1e-6))
        return Effect.as(Effect.repeatN(untilAllowed(pacer, options.key, 1), options.tokens - 1), [
          options.tokens,
          options.tokens * refillMillis
        ] as const)
      }
      const limit = options.limit
      const windowMillis = windowOf(options.refillRate, limit)
      return Effect.flatMap(
        decide(limiterOf(name, "fixed-window", limit, windowMillis), options.key, options.tokens),
        (r) =>
          r.allowed
            ? Effect.clockWith((clock) =>
                Effect.succeed([
                  limit - r.remaining,
                  windowMillis - (clock.unsafeCurrentTimeMillis() % windowMillis)
                ] as const)
              )
            : Effect.succeed([limit - r.remaining + options.tokens, Duration.toMillis(r.retryAfter)] as const)
      )
    },
    tokenBucket: (options) => {
      const limiter = limiterOf(name, "token-bucket", options.limit, windowOf(options.refillRate, options.limit))
      return options.allowOverflow
        ? Effect.map(untilAllowed(limiter, options.key, options.tokens), (r) => r.remaining)
        : Effect.map(decide(limiter, options.key, options.tokens), (r) =>
            r.allowed ? r.remaining : r.remaining - options.tokens
          )
    }
  }
}

type RateLimiterStore = RateLimiter.RateLimiterStore

/**
 * Builds a `RateLimiterStore` over the `DistributedCache` in context. Invalid options are a
 * programmer error: a synchronous `Error`, before anything touches Redis.
 *
 * @example
 * ```ts
 * import * as ExperimentalRateLimiter from "@effect/experimental/RateLimiter"
 * import { Effect } from "effect"
 * import { LocalOnly } from "effect-failclosed"
 * import { make } from "effect-failclosed/RateLimiterStore"
 *
 * const program = Effect.gen(function* () {
 *   const store = yield* make({ name: "api" })
 *   const limiter = yield* ExperimentalRateLimiter.make.pipe(
 *     Effect.provideService(ExperimentalRateLimiter.RateLimiterStore, store)
 *   )
 *   return yield* limiter.consume({ key: "user:1", limit: 10, window: "1 minute" })
 * }).pipe(Effect.provide(LocalOnly))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options?: RateLimiterStoreOptions
): Effect.Effect<RateLimiterStore["Type"], never, DistributedCache> => {
  const check = optionChecks("RateLimiterStore")
  const name = check.name(options?.name ?? "effect-experimental")
  // the pacer of onExceeded "delay" is the limiter `<name>:paced`, and a limiter name has at most 128 characters
  if (name.length > 128 - PACED_SUFFIX.length)
    check.invalid(`name must be at most ${128 - PACED_SUFFIX.length} characters`)
  // a store named `<x>:paced` would share its token-bucket state with the pacer of the store `<x>`
  if (name.endsWith(PACED_SUFFIX)) check.invalid(`name must not end with "${PACED_SUFFIX}" (the pacers' names)`)
  const maxKeyLength = check.positiveInteger("maxKeyLength", options?.maxKeyLength, 1024)
  return Effect.map(DistributedCache, (cache) => makeService(cache, name, maxKeyLength))
}

/**
 * Provides `@effect/experimental`'s `RateLimiterStore` from the `DistributedCache` in context, so
 * the mode Layer below it decides what an outage means. The drop-in for
 * `RateLimiter/Redis.layerStore(redisOptions)`.
 *
 * @example
 * ```ts
 * import * as ExperimentalRateLimiter from "@effect/experimental/RateLimiter"
 * import { Effect, Layer } from "effect"
 * import { RedisClient, StrictDistributed } from "effect-failclosed"
 * import * as RateLimiterStore from "effect-failclosed/RateLimiterStore"
 *
 * // was: RateLimiterRedis.layerStore({ host: "localhost" })
 * const RateLimiterLive = ExperimentalRateLimiter.layer.pipe(
 *   Layer.provide(RateLimiterStore.layer()),
 *   Layer.provide(StrictDistributed),
 *   Layer.provide(RedisClient.layerConfig())
 * )
 *
 * const login = Effect.gen(function* () {
 *   const withLimiter = yield* ExperimentalRateLimiter.makeWithRateLimiter
 *   return yield* Effect.succeed("welcome").pipe(
 *     withLimiter({ key: "login:ada", limit: 5, window: "1 minute", algorithm: "token-bucket" })
 *   )
 * }).pipe(Effect.provide(RateLimiterLive))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options?: RateLimiterStoreOptions): Layer.Layer<RateLimiterStore, never, DistributedCache> =>
  Layer.effect(RateLimiter.RateLimiterStore, make(options))
