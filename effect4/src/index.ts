/**
 * effect-failclosed-effect4: caches and shared security state in Redis for Effect 4, where what happens when Redis
 * is unavailable is chosen at composition time and visible in the types. The Effect 4 line of `effect-failclosed`:
 * the same names, the same core (`@effect-failclosed/core`) and the same key layout, so nodes of both lines share
 * state on one Redis.
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
export { RedisClient, RedisClientConfig, type RedisClientOptions, type RedisClientService } from "./RedisClient.js"

/**
 * @since 0.1.0
 */
export * as Keyspace from "./Keyspace.js"

/**
 * @since 0.1.0
 */
export * as RateLimiter from "./RateLimiter.js"

/**
 * @since 0.2.0
 */
export * as RateLimiterStore from "./RateLimiterStore.js"

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
 */
export * as HttpMiddleware from "./HttpMiddleware.js"

/**
 * @since 0.1.0
 */
export * as KeyLayout from "./KeyLayout.js"

/**
 * @since 0.1.0
 */
export * as KeyValueStore from "./KeyValueStore.js"

/**
 * @since 0.1.0
 */
export * as Persistence from "./Persistence.js"

/**
 * @since 0.1.0
 */
export * as TestCache from "./TestCache.js"
