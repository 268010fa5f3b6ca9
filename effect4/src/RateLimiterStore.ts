/**
 * The store of Effect 4's own `RateLimiter` (`effect/persistence/RateLimiter`) kept in the `DistributedCache`: each
 * decision is one of this package's `RateLimiter` decisions (one atomic script in Redis, the core's key layout), so
 * Effect's limiter gets the modes (an unavailable Redis fails closed: a `RateLimiterError` whose reason's `cause` is
 * the `CacheBackendUnavailable`). The same mapping as `effect-failclosed/RateLimiterStore` on Effect 3.
 *
 * Effect's `fixed-window` is this package's fixed window (the limit over `limit × refillRate`), its `token-bucket`
 * this package's token bucket; `onExceeded: "delay"` paces at one token per refill interval. The adaptive limiter
 * (`adaptiveConsume`, `adaptiveFeedback`) has no fail-closed equivalent here: it fails with a store error.
 *
 * @since 0.2.0
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as EffectRateLimiter from "effect/persistence/RateLimiter"
import { DistributedCache, type DistributedCacheService, type RateLimitAlgorithm } from "./DistributedCache.js"
import type { CacheBackendUnavailable, RateLimitInputInvalid } from "./errors.js"
import { optionChecks } from "./internal/options.js"
import * as Limiter from "./RateLimiter.js"

/**
 * The options of {@link layer}.
 *
 * @example
 * ```ts
 * import type { RateLimiterStore } from "effect-failclosed-effect4"
 *
 * const options: RateLimiterStore.RateLimiterStoreOptions = { name: "effect-rate-limiter" }
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export interface RateLimiterStoreOptions {
  /** the limiter name in every key (default `"effect-rate-limiter"`) */
  readonly name?: string | undefined
  /** the longest key Effect's limiter may pass (default 1024 characters) */
  readonly maxKeyLength?: number | undefined
}

const storeError = (message: string, cause?: unknown) =>
  new EffectRateLimiter.RateLimiterError({
    reason: new EffectRateLimiter.RateLimitStoreError(cause === undefined ? { message } : { message, cause })
  })
const fromLimiter = (error: CacheBackendUnavailable | RateLimitInputInvalid) => storeError(error.message, error)

const PACED_SUFFIX = ":paced"
const LIMITER_MEMO_SIZE = 1024

const makeService = (
  cache: DistributedCacheService,
  name: string,
  maxSubjectLength: number
): EffectRateLimiter.RateLimiterStore["Service"] => {
  const limiters = new Map<string, Limiter.RateLimiter>()
  const limiterOf = (
    limiterName: string,
    algorithm: RateLimitAlgorithm,
    limit: number,
    windowMillis: number
  ): Limiter.RateLimiter | EffectRateLimiter.RateLimiterError => {
    const id = `${limiterName}|${algorithm}|${limit}|${windowMillis}`
    let limiter = limiters.get(id)
    if (limiter === undefined) {
      try {
        limiter = Limiter.make({ name: limiterName, algorithm, limit, window: windowMillis, maxSubjectLength })
      } catch (error) {
        return storeError(error instanceof Error ? error.message : String(error), error)
      }
      if (limiters.size >= LIMITER_MEMO_SIZE) limiters.clear()
      limiters.set(id, limiter)
    }
    return limiter
  }
  const decide = (
    limiter: Limiter.RateLimiter | EffectRateLimiter.RateLimiterError,
    key: string,
    cost: number
  ): Effect.Effect<Limiter.RateLimitResult, EffectRateLimiter.RateLimiterError> =>
    limiter instanceof EffectRateLimiter.RateLimiterError
      ? Effect.fail(limiter)
      : limiter
          .consume(key, { cost })
          .pipe(Effect.provideService(DistributedCache, cache), Effect.mapError(fromLimiter))
  const untilAllowed = (
    limiter: Limiter.RateLimiter | EffectRateLimiter.RateLimiterError,
    key: string,
    cost: number
  ): Effect.Effect<Limiter.RateLimitResult, EffectRateLimiter.RateLimiterError> =>
    Effect.flatMap(decide(limiter, key, cost), (result) =>
      result.allowed
        ? Effect.succeed(result)
        : Effect.andThen(Effect.sleep(result.retryAfter), untilAllowed(limiter, key, cost))
    )
  const windowOf = (refillRate: Duration.Duration, limit: number) =>
    Math.ceil(Duration.toMillis(refillRate) * limit - 1e-6)
  const unsupported = Effect.fail(
    storeError("the adaptive rate limiter is not supported by effect-failclosed's store (it has no fail-closed form)")
  )

  return {
    fixedWindow: (options) => {
      const refillMillis = Duration.toMillis(options.refillRate)
      if (options.limit === undefined) {
        // onExceeded "delay": pace at one token per refill interval
        if (!Number.isSafeInteger(options.tokens) || options.tokens <= 0) {
          return Effect.fail(storeError("tokens must be a positive integer"))
        }
        const pacer = limiterOf(name + PACED_SUFFIX, "token-bucket", 1, Math.ceil(refillMillis - 1e-6))
        return Effect.as(Effect.repeat(untilAllowed(pacer, options.key, 1), { times: options.tokens - 1 }), [
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
                  windowMillis - (clock.currentTimeMillisUnsafe() % windowMillis)
                ] as const)
              )
            : Effect.succeed([limit - r.remaining + options.tokens, Duration.toMillis(r.retryAfter)] as const)
      )
    },
    tokenBucket: (options) => {
      const limiter = limiterOf(name, "token-bucket", options.limit, windowOf(options.refillRate, options.limit))
      // elapsed since the last refill is not reported by the script: 0 makes Effect's delay the longest it can be
      return options.allowOverflow
        ? Effect.map(untilAllowed(limiter, options.key, options.tokens), (r) => [r.remaining, 0] as const)
        : Effect.map(
            decide(limiter, options.key, options.tokens),
            (r) => [r.allowed ? r.remaining : r.remaining - options.tokens, 0] as const
          )
    },
    adaptiveConsume: () => unsupported,
    adaptiveFeedback: () => unsupported
  }
}

/**
 * A Layer of Effect 4's `RateLimiterStore` over the `DistributedCache` of the context: Effect's own `RateLimiter`
 * (`RateLimiter.layer`) on top of it decides in Redis, fail-closed.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { RateLimiter as EffectRateLimiter } from "effect/persistence"
 * import { LocalOnly, RateLimiterStore } from "effect-failclosed-effect4"
 *
 * const limiter = EffectRateLimiter.layer.pipe(Layer.provide(RateLimiterStore.layer()), Layer.provide(LocalOnly))
 * ```
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (
  options: RateLimiterStoreOptions = {}
): Layer.Layer<EffectRateLimiter.RateLimiterStore, never, DistributedCache> => {
  const check = optionChecks("RateLimiterStore")
  const name = check.name(options.name ?? "effect-rate-limiter")
  // a store named `<x>:paced` would share its token-bucket state with the pacer of the store `<x>`
  if (name.endsWith(PACED_SUFFIX)) check.invalid(`name must not end with "${PACED_SUFFIX}" (the pacers' names)`)
  const maxKeyLength = check.positiveInteger("maxKeyLength", options.maxKeyLength, 1024)
  return Layer.effect(
    EffectRateLimiter.RateLimiterStore,
    DistributedCache.useSync((cache) => makeService(cache, name, maxKeyLength))
  )
}
