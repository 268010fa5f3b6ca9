/**
 * Rate-limit algorithms over node-local state (placeholder: fixed window only; the
 * RateLimiter work replaces this file with all algorithms).
 */
import type { RateLimitDecision, RateLimitRequest } from "../DistributedCache.js"

/** @internal */
export const memoryRateLimit = (
  state: Map<string, unknown>,
  request: RateLimitRequest,
  now: number
): RateLimitDecision => {
  const windowStart = Math.floor(now / request.windowMillis) * request.windowMillis
  const expiresAt = windowStart + request.windowMillis
  const current = state.get(request.key) as { count: number; expiresAt: number } | undefined
  const count = current !== undefined && current.expiresAt > now ? current.count : 0
  if (count + request.cost > request.limit) {
    return { allowed: false, remaining: request.limit - count, retryAfterMillis: expiresAt - now }
  }
  state.set(request.key, { count: count + request.cost, expiresAt })
  return { allowed: true, remaining: request.limit - count - request.cost, retryAfterMillis: 0 }
}
