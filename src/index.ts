/**
 * effect-failclosed: caches and shared security state in Redis for Effect, where what happens
 * when Redis is unavailable is chosen at composition time and visible in the types.
 *
 * @since 0.1.0
 */

/**
 * @since 0.1.0
 */
export {
  type Backend,
  type Cached,
  type CacheGet,
  type CacheHealth,
  CacheModeName,
  type CacheStats,
  DistributedCache,
  type DistributedCacheService,
  type RateLimitAlgorithm,
  type RateLimitDecision,
  type RateLimitRequest
} from "./DistributedCache.js"

/**
 * @since 0.1.0
 */
export {
  ExplicitDegraded,
  explicitDegraded,
  type ExplicitDegradedOptions,
  LocalOnly,
  localOnly,
  type LocalOnlyOptions,
  StrictDistributed,
  strictDistributed,
  type StrictDistributedOptions
} from "./CacheMode.js"

/**
 * @since 0.1.0
 */
export {
  RedisClient,
  RedisClientConfig,
  type RedisClientOptions,
  type RedisClientService,
  RedisClusterConfig,
  type RedisClusterOptions,
  type RedisNodeAddress,
  RedisSentinelConfig,
  type RedisSentinelOptions
} from "./RedisClient.js"

/**
 * @since 0.1.0
 */
export * as Keyspace from "./Keyspace.js"

/**
 * @since 0.1.0
 * @deprecated Import `effect-failclosed/RateLimiter` instead (`import * as FailClosedRateLimiter from
 * "effect-failclosed/RateLimiter"`): this root name clashes with `@effect/experimental`'s `RateLimiter`.
 * The root re-export will be removed in 0.3.0.
 */
export * as RateLimiter from "./RateLimiter.js"

/**
 * @since 0.1.0
 */
export * as ReplayGuard from "./ReplayGuard.js"

/**
 * @since 0.1.0
 */
export { SecurityEvent, SecurityEventKind } from "./SecurityEvent.js"

/**
 * @since 0.1.0
 */
export {
  CacheBackendUnavailable,
  CacheEntryInvalid,
  CacheValueInvalid,
  InputField,
  RateLimitExceeded,
  RateLimitInputInvalid,
  ReplayDetected
} from "./errors.js"

/**
 * @since 0.1.0
 * @deprecated Import `effect-failclosed/KeyValueStore` instead (`import * as FailClosedKeyValueStore from
 * "effect-failclosed/KeyValueStore"`): this root name clashes with `@effect/platform`'s `KeyValueStore`.
 * The root re-export will be removed in 0.3.0.
 */
export * as KeyValueStore from "./KeyValueStore.js"

/**
 * @since 0.1.0
 */
export * as Observability from "./Observability.js"

/**
 * @since 0.1.0
 * @deprecated Import `effect-failclosed/HttpMiddleware` instead (`import * as FailClosedHttpMiddleware from
 * "effect-failclosed/HttpMiddleware"`): this root name clashes with `@effect/platform`'s `HttpMiddleware`.
 * The root re-export will be removed in 0.3.0.
 */
export * as HttpMiddleware from "./HttpMiddleware.js"

/**
 * @since 0.1.0
 */
export * as KeyLayout from "./KeyLayout.js"

/**
 * @since 0.1.0
 */
export * as TestCache from "./TestCache.js"

/**
 * @since 0.2.0
 */
export * as Health from "./Health.js"
