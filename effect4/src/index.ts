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
export { type Backend, type Cached, CacheModeName } from "./DistributedCache.js"

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
  RateLimitExceeded,
  RateLimitInputInvalid,
  ReplayDetected
} from "./errors.js"
