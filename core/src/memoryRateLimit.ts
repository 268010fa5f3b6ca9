/**
 * Rate-limit decisions over node-local state: the same algorithms, state and arithmetic as the
 * Lua scripts of redis/scripts.ts, with `now` from the wrapper's clock (passed in by the memory
 * store: Effect's Clock, so TestClock drives it). Every state entry carries `expiresAt` (the moment the Redis
 * key would expire) so the store can sweep idle entries, and an entry found past its expiry is
 * treated as absent, exactly like an expired Redis key.
 */
import { type Decision, decisionOf, type RateLimitAlgorithm, type RateLimitRequest } from "./store.js"

interface FixedWindowState {
  readonly algorithm: "fixed-window"
  expiresAt: number
  /** window start */
  start: number
  used: number
}

interface SlidingWindowState {
  readonly algorithm: "sliding-window"
  expiresAt: number
  /** decision times and costs of the allowed requests, oldest first, from `head` on */
  readonly times: Array<number>
  readonly costs: Array<number>
  head: number
  /** cost held in the log */
  total: number
  /** the last time seen (a clock never moves the log backwards) */
  last: number
}

interface TokenBucketState {
  readonly algorithm: "token-bucket"
  expiresAt: number
  last: number
  /** a token costs `window` units, a millisecond repays `limit` */
  debt: number
}

/** @internal */
export type RateLimitState = FixedWindowState | SlidingWindowState | TokenBucketState

const ALLOWED_NO_WAIT = 0

const current = <S extends RateLimitState>(
  state: Map<string, unknown>,
  key: string,
  algorithm: RateLimitAlgorithm,
  now: number
): S | undefined => {
  const s = state.get(key) as RateLimitState | undefined
  if (s === undefined) return undefined
  if (s.expiresAt <= now || s.algorithm !== algorithm) {
    state.delete(key)
    return undefined
  }
  return s as S
}

const fixedWindow = (state: Map<string, unknown>, request: RateLimitRequest, now: number): Decision => {
  const { cost, limit, windowMillis: window } = request
  let start = now - (now % window)
  const s = current<FixedWindowState>(state, request.key, "fixed-window", now)
  let used = 0
  if (s !== undefined) {
    if (s.start > start) start = s.start
    if (s.start === start) used = s.used
  }
  const reset = start + window - now
  if (used + cost > limit) return decisionOf(false, limit - used, reset)
  if (s !== undefined) {
    s.start = start
    s.used = used + cost
    s.expiresAt = now + reset
  } else {
    state.set(request.key, { algorithm: "fixed-window", start, used: used + cost, expiresAt: now + reset })
  }
  return decisionOf(true, limit - used - cost, ALLOWED_NO_WAIT)
}

const COMPACT_AT = 1024

const slidingWindow = (state: Map<string, unknown>, request: RateLimitRequest, now: number): Decision => {
  const { cost, limit, windowMillis: window } = request
  let s = current<SlidingWindowState>(state, request.key, "sliding-window", now)
  if (s === undefined) {
    s = { algorithm: "sliding-window", expiresAt: 0, times: [], costs: [], head: 0, total: 0, last: now }
    state.set(request.key, s)
  }
  if (s.last > now) now = s.last
  s.last = now
  const edge = now - window
  const { costs, times } = s
  while (s.head < times.length && times[s.head]! <= edge) {
    s.total -= costs[s.head]!
    s.head++
  }
  if (s.head === times.length) {
    times.length = 0
    costs.length = 0
    s.head = 0
    s.total = 0
  } else if (s.head >= COMPACT_AT && s.head * 2 >= times.length) {
    times.splice(0, s.head)
    costs.splice(0, s.head)
    s.head = 0
  }
  if (s.total + cost > limit) {
    const need = s.total + cost - limit
    let acc = 0
    let retry = window
    for (let i = s.head; i < times.length; i++) {
      acc += costs[i]!
      if (acc >= need) {
        retry = times[i]! + window - now
        break
      }
    }
    return decisionOf(false, limit - s.total, retry)
  }
  times.push(now)
  costs.push(cost)
  s.total += cost
  s.expiresAt = now + window
  return decisionOf(true, limit - s.total, ALLOWED_NO_WAIT)
}

const tokenBucket = (state: Map<string, unknown>, request: RateLimitRequest, now: number): Decision => {
  const { cost, limit, windowMillis: window } = request
  const s = current<TokenBucketState>(state, request.key, "token-bucket", now)
  let debt = 0
  if (s !== undefined) {
    if (s.last > now) now = s.last
    const elapsed = now - s.last
    if (elapsed < window) debt = Math.max(0, s.debt - elapsed * limit)
  }
  const capacity = limit * window
  const after = debt + cost * window
  if (after > capacity) {
    return decisionOf(false, Math.floor((capacity - debt) / window), Math.ceil((after - capacity) / limit))
  }
  const expiresAt = now + Math.ceil(after / limit)
  if (s !== undefined) {
    s.last = now
    s.debt = after
    s.expiresAt = expiresAt
  } else {
    state.set(request.key, { algorithm: "token-bucket", last: now, debt: after, expiresAt })
  }
  return decisionOf(true, Math.floor((capacity - after) / window), ALLOWED_NO_WAIT)
}

/** @internal */
export const memoryRateLimit = (state: Map<string, unknown>, request: RateLimitRequest, now: number): Decision => {
  switch (request.algorithm) {
    case "fixed-window":
      return fixedWindow(state, request, now)
    case "sliding-window":
      return slidingWindow(state, request, now)
    case "token-bucket":
      return tokenBucket(state, request, now)
  }
}
