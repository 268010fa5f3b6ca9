/**
 * The Lua scripts of the Redis store, run with EVALSHA (EVAL once when the server answers NOSCRIPT, which also caches
 * the script again): one per rate-limit algorithm (one atomic decision each), and the lock release by owner.
 *
 * Rate limits: Every key
 * a script touches is in KEYS, shares the hash tag of the request key (so Redis Cluster routes
 * them to one slot) and is given a TTL. Time is the server's `TIME`, never the client's clock,
 * so nodes with skewed clocks agree; a server clock that steps backwards is clamped to the last
 * time the state saw, so it can never hand out a fresh budget.
 *
 * State, per algorithm (all integers, exact in Lua's doubles below 2^53):
 *
 * - fixed-window: hash `K` {w: window start, c: cost used}; windows are aligned to multiples of
 *   the window on the server's epoch clock. TTL: the end of the window, set when the window's
 *   first decision writes the state.
 * - sliding-window: an exact sliding log. Sorted set `K:l` of members `<seq>:<cost>` scored by
 *   decision time in microseconds, and hash `K:m` {t: cost in the log, q: member sequence, n: last time}. A
 *   decision at `now` counts every allowed cost with time > now - window, so no interval of one
 *   window length ever holds more than `limit`. Memory is O(allowed decisions in one window).
 *   TTL of both: until the newest member leaves the window.
 * - token-bucket: hash `K` {t: last time, d: debt}. A bucket of `limit` tokens refilled at
 *   `limit` per window, kept as integer debt in units where a token costs `window` and one
 *   millisecond repays `limit` (the GCRA theoretical arrival time, scaled by `limit` so no
 *   fraction is ever rounded). TTL: until the debt is repaid, when the bucket is full again.
 *
 * Every script returns `{allowed (0|1), remaining, retryAfterMillis}`. Numbers reach Redis
 * through `redis.call` arguments (exact) or `string.format('%d')`, never through Lua's `..`,
 * which rounds to 14 digits.
 */
import { createHash } from "node:crypto"
import { type Decision, decisionOf, type RateLimitAlgorithm } from "../store.js"

const CLOCK = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
`

// Within a window the state already has the window's TTL: the allowed path adds to `c` (HINCRBY) and sets neither `w`
// nor the TTL again. Measured (Redis CPU per decision, 256 in flight, 5 rounds of 100k on one redis-server, medians):
// 7.1-9.3 µs with HSET + PEXPIRE on every decision, 6.7-7.4 µs with HINCRBY; rate-limiter-flexible's script 4.3-5.2.
// The state's shape is unchanged, so nodes of either version share a window's count.
const FIXED_WINDOW =
  CLOCK +
  `
local start = now - (now % window)
local state = redis.call('HMGET', KEYS[1], 'w', 'c')
local used = 0
local w = tonumber(state[1])
if w ~= nil then
  if w > start then start = w end
  if w == start then used = tonumber(state[2]) or 0 end
end
local reset = start + window - now
if used + cost > limit then
  return {0, limit - used, reset}
end
if w == start then
  redis.call('HINCRBY', KEYS[1], 'c', cost)
else
  redis.call('HSET', KEYS[1], 'w', start, 'c', cost)
  redis.call('PEXPIRE', KEYS[1], reset)
end
return {1, limit - used - cost, 0}
`

// The sliding log keeps time in microseconds: with millisecond truncation two decisions up to
// one millisecond less than a window apart could both be counted as a window apart.
const SLIDING_WINDOW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2]) * 1000
local cost = tonumber(ARGV[3])
local function millis(us) return math.floor((us + 999) / 1000) end
local log, meta = KEYS[1], KEYS[2]
local m = redis.call('HMGET', meta, 't', 'q', 'n')
local last = tonumber(m[3])
if last ~= nil and last > now then now = last end
local edge = now - window
local total = tonumber(m[1])
local seq = tonumber(m[2]) or 0
local function costOf(member) return tonumber(string.match(member, ':(%d+)$')) end
if total == nil then
  total = 0
  local live = redis.call('ZRANGEBYSCORE', log, string.format('(%d', edge), '+inf')
  for i = 1, #live do total = total + costOf(live[i]) end
  redis.call('ZREMRANGEBYSCORE', log, '-inf', edge)
else
  local expired = redis.call('ZRANGEBYSCORE', log, '-inf', edge)
  if #expired > 0 then
    for i = 1, #expired do total = total - costOf(expired[i]) end
    redis.call('ZREMRANGEBYSCORE', log, '-inf', edge)
  end
  if total > 0 and redis.call('ZCARD', log) == 0 then total = 0 end
end
if total + cost > limit then
  local need = total + cost - limit
  local oldest = redis.call('ZRANGE', log, 0, need - 1, 'WITHSCORES')
  local acc, retry = 0, window
  for i = 1, #oldest, 2 do
    acc = acc + costOf(oldest[i])
    if acc >= need then
      retry = tonumber(oldest[i + 1]) + window - now
      break
    end
  end
  local newest = redis.call('ZRANGE', log, -1, -1, 'WITHSCORES')
  if #newest == 2 then
    local ttl = tonumber(newest[2]) + window - now
    redis.call('HSET', meta, 't', total, 'q', seq, 'n', now)
    redis.call('PEXPIRE', log, millis(ttl))
    redis.call('PEXPIRE', meta, millis(ttl))
  end
  return {0, limit - total, millis(retry)}
end
seq = seq + 1
total = total + cost
redis.call('ZADD', log, now, string.format('%d:%d', seq, cost))
redis.call('HSET', meta, 't', total, 'q', seq, 'n', now)
redis.call('PEXPIRE', log, millis(window))
redis.call('PEXPIRE', meta, millis(window))
return {1, limit - total, 0}
`

const TOKEN_BUCKET =
  CLOCK +
  `
local m = redis.call('HMGET', KEYS[1], 't', 'd')
local last = tonumber(m[1])
local debt = 0
if last ~= nil then
  if last > now then now = last end
  local elapsed = now - last
  if elapsed < window then
    debt = (tonumber(m[2]) or 0) - elapsed * limit
    if debt < 0 then debt = 0 end
  end
end
local capacity = limit * window
local after = debt + cost * window
if after > capacity then
  return {0, math.floor((capacity - debt) / window), math.ceil((after - capacity) / limit)}
end
redis.call('HSET', KEYS[1], 't', now, 'd', after)
redis.call('PEXPIRE', KEYS[1], math.ceil(after / limit))
return {1, math.floor((capacity - after) / window), 0}
`

/**
 * A Lua script and its SHA-1 (the EVALSHA handle). KEYS: the request's key, and for
 * sliding-window `<key>:l` (the log) and `<key>:m` (its meta hash); ARGV: limit, window millis, cost.
 * @internal
 */
export interface Script {
  readonly lua: string
  readonly sha: string
}

const script = (lua: string): Script => ({ lua, sha: createHash("sha1").update(lua).digest("hex") })

/**
 * The scripts, by algorithm (exported for the benchmark, which runs them with raw ioredis).
 * @internal
 */
export const rateLimitScripts: Readonly<Record<RateLimitAlgorithm, Script>> = {
  "fixed-window": script(FIXED_WINDOW),
  "sliding-window": script(SLIDING_WINDOW),
  "token-bucket": script(TOKEN_BUCKET)
}

/**
 * true for the error of an EVALSHA whose script the server does not have (restart, SCRIPT FLUSH, failover)
 * @internal
 */
export const isNoScript = (error: unknown): boolean => error instanceof Error && error.message.startsWith("NOSCRIPT")

/** @internal */
export const scriptOf = (algorithm: RateLimitAlgorithm): Script => rateLimitScripts[algorithm]

/**
 * Deletes the lock `KEYS[1]` only if its value is still `ARGV[1]` (its owner's token): 1 when it did, else 0.
 * @internal
 */
export const RELEASE_LOCK = script(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

/**
 * A script's reply as a decision; throws on anything else.
 * @internal
 */
export const toDecision = (reply: unknown): Decision => {
  if (!Array.isArray(reply) || reply.length !== 3) throw new Error("unexpected rate-limit script reply")
  const r = reply as [number, number, number]
  return decisionOf(r[0] === 1, r[1], r[2])
}

/**
 * Runs `script` with EVALSHA, and EVAL when the server does not have it (restart, SCRIPT FLUSH, failover), which
 * caches it again.
 * @internal
 */
export const evalScript = (
  command: (name: string, args: ReadonlyArray<string | number>) => Promise<unknown>,
  script: Script,
  keys: ReadonlyArray<string>,
  args: ReadonlyArray<string | number>
): Promise<unknown> => {
  const argv: Array<string | number> = [script.sha, keys.length, ...keys, ...args]
  return command("evalsha", argv).catch((error: unknown) => {
    if (!isNoScript(error)) throw error
    argv[0] = script.lua
    return command("eval", argv)
  })
}
