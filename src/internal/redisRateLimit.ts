/**
 * Rate-limit decisions in Redis (placeholder: fixed window only; the RateLimiter work replaces
 * this file with one Lua script per algorithm, EVALSHA with NOSCRIPT fallback, server time).
 */
import type { Cluster, Redis } from "ioredis"
import type { RateLimitDecision, RateLimitRequest } from "../DistributedCache.js"

const FIXED_WINDOW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local start = now - (now % window)
local key = KEYS[1] .. ':' .. start
local count = tonumber(redis.call('GET', key) or '0')
if count + cost > limit then
  return {0, limit - count, start + window - now}
end
redis.call('SET', key, count + cost, 'PX', start + window - now + 1000)
return {1, limit - count - cost, 0}
`

/** @internal */
export const redisRateLimit = async (
  client: Redis | Cluster,
  request: RateLimitRequest
): Promise<RateLimitDecision> => {
  const [allowed, remaining, retryAfter] = (await client.eval(
    FIXED_WINDOW,
    1,
    request.key,
    request.windowMillis,
    request.limit,
    request.cost
  )) as [number, number, number]
  return { allowed: allowed === 1, remaining, retryAfterMillis: retryAfter }
}
