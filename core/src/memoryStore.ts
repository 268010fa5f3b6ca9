/**
 * The node-local store: a bounded LRU (a Map in recency order) with expiry read from `now`, the wrapper's clock
 * (Effect's Clock, so TestClock drives it). Every operation is synchronous. Values are strings (encoded JSON): what
 * the store holds cannot be mutated by a caller, and a reader decodes its own copy (or keeps one per entry, see
 * `read`).
 */
import { LruOrder } from "./lruOrder.js"
import { memoryRateLimit } from "./memoryRateLimit.js"
import type { Decision, LocalRead, MemoryStore, RateLimitRequest } from "./store.js"

interface Entry {
  value: string
  /** epoch millis, or Infinity */
  expiresAt: number
  /** the recency tick of the entry's place in the LRU order */
  touched: number
  /** the entry as a LocalOnly read returns it: made on the first such read, then the same object for every read */
  read: LocalRead | undefined
}

/** @internal */
export const makeMemoryStore = (options: { readonly capacity: number; readonly now: () => number }): MemoryStore => {
  const { capacity, now } = options
  const entries = new Map<string, Entry>()
  /** recency: least recently used out first, within capacity / 8 (see lruOrder) */
  const order = new LruOrder(entries, capacity)
  /** rate-limit state is kept apart from entries so a flood of cache sets cannot evict it */
  const limiterState = new Map<string, unknown>()

  const sweepLimiterState = (at: number) => {
    // entries carry their own expiry; see memoryRateLimit
    for (const [k, v] of limiterState) {
      if ((v as { expiresAt: number }).expiresAt <= at) limiterState.delete(k)
    }
  }

  const lookup = (key: string, at: number): Entry | undefined => {
    const entry = entries.get(key)
    if (entry === undefined) return undefined
    if (entry.expiresAt <= at) {
      entries.delete(key)
      return undefined
    }
    return entry
  }

  const put = (key: string, value: string, expiresAt: number) => {
    entries.delete(key)
    entries.set(key, { value, expiresAt, touched: order.stamp(), read: undefined })
    while (entries.size > capacity) {
      const key = order.oldest()
      if (key === undefined) break
      entries.delete(key)
    }
  }

  /** the live entry of `key`, its recency refreshed */
  const touch = (key: string): Entry | undefined => {
    const entry = lookup(key, now())
    if (entry !== undefined) order.used(key, entry)
    return entry
  }

  /** `SET key value PX ttlMillis NX` */
  const putIfAbsent = (key: string, value: string, ttlMillis: number): boolean => {
    const at = now()
    if (lookup(key, at) !== undefined) return false
    put(key, value, at + ttlMillis)
    return true
  }

  let rateLimitCalls = 0
  return {
    backend: "local",
    size: () => entries.size,
    get: (key) => touch(key)?.value ?? null,
    read: (key) => {
      const entry = touch(key)
      if (entry === undefined) return undefined
      return (entry.read ??= { value: entry.value, backend: "local", degraded: false, near: false, stale: false })
    },
    set: (key, value, ttlMillis) => put(key, value, ttlMillis === undefined ? Infinity : now() + ttlMillis),
    getMany: (keys) => keys.map((key) => touch(key)?.value ?? null),
    setMany: (batch) => {
      const at = now()
      for (const [key, value, ttl] of batch) put(key, value, ttl === undefined ? Infinity : at + ttl)
    },
    invalidate: (key) => lookup(key, now()) !== undefined && entries.delete(key),
    clear: (prefix) => {
      let n = 0
      const at = now()
      for (const [k, e] of entries) {
        if (k.startsWith(prefix)) {
          entries.delete(k)
          if (e.expiresAt > at) n++
        }
      }
      for (const k of limiterState.keys()) if (k.startsWith(prefix)) limiterState.delete(k)
      return n
    },
    count: (prefix) => {
      let n = 0
      const at = now()
      for (const [k, e] of entries) if (e.expiresAt > at && k.startsWith(prefix)) n++
      return n
    },
    claim: (key, ttlMillis) => putIfAbsent(key, "1", ttlMillis),
    acquireLock: (key, token, ttlMillis) => putIfAbsent(key, token, ttlMillis),
    releaseLock: (key, token) => lookup(key, now())?.value === token && entries.delete(key),
    rateLimit: (request: RateLimitRequest): Decision => {
      const at = now()
      if (++rateLimitCalls % 1024 === 0) sweepLimiterState(at)
      return memoryRateLimit(limiterState, request, at)
    },
    reset: () => {
      entries.clear()
      limiterState.clear()
    }
  }
}
