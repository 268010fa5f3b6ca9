/**
 * The node-local store: a bounded LRU (a Map in recency order) with expiry read from Effect's
 * Clock, so TestClock drives it. Values are strings (encoded JSON), so no caller can mutate
 * what the store holds: every read decodes a fresh value.
 */
import type * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import { memoryRateLimit } from "./memoryRateLimit.js"
import { LruOrder } from "@effect-failclosed/core"
import type { Cached, RateLimitDecision, RateLimitRequest } from "../DistributedCache.js"
import { makeCached } from "./cached.js"
import type { Store } from "./store.js"

interface Entry {
  value: string
  /** epoch millis, or Infinity */
  expiresAt: number
  /** the recency tick of the entry's place in the LRU order */
  touched: number
  /** the entry as a LocalOnly read returns it: made on the first such read, then the same object for every read */
  read: Cached<string> | undefined
}

/**
 * The memory store, with what only a node-local store can offer: its size, a synchronous reset and a synchronous
 * read.
 * @internal
 */
export interface MemoryStore extends Store<never> {
  readonly backend: "local"
  readonly size: () => number
  /** `reset`, synchronously */
  readonly unsafeReset: () => void
  /**
   * A synchronous read for LocalOnly: the live entry of `key` marked as served from memory, the same object for
   * every read of one entry (a new one after the entry is written again), so a reader can keep what it derives from
   * an entry next to it (in a WeakMap) for as long as the entry lives.
   */
  readonly unsafeRead: (key: string) => Cached<string> | undefined
}

/** @internal */
export const makeMemoryStore = (options: { readonly capacity: number; readonly clock: Clock.Clock }): MemoryStore => {
  const { capacity, clock } = options
  const entries = new Map<string, Entry>()
  /** recency: least recently used out first, within capacity / 8 (see internal/lruOrder) */
  const order = new LruOrder(entries, capacity)
  /** rate-limit state is kept apart from entries so a flood of cache sets cannot evict it */
  const limiterState = new Map<string, unknown>()

  const now = () => clock.unsafeCurrentTimeMillis()
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

  const get = (key: string) => Effect.sync(() => touch(key)?.value ?? null)

  const unsafeRead = (key: string): Cached<string> | undefined => {
    const entry = touch(key)
    if (entry === undefined) return undefined
    return (entry.read ??= makeCached(entry.value, "local", false, false, undefined))
  }

  const set = (key: string, value: string, ttlMillis: number | undefined) =>
    Effect.sync(() => put(key, value, ttlMillis === undefined ? Infinity : now() + ttlMillis))

  /** `SET key value PX ttlMillis NX` */
  const putIfAbsent = (key: string, value: string, ttlMillis: number): boolean => {
    const at = now()
    if (lookup(key, at) !== undefined) return false
    put(key, value, at + ttlMillis)
    return true
  }

  const unsafeReset = () => {
    entries.clear()
    limiterState.clear()
  }

  let rateLimitCalls = 0
  return {
    backend: "local",
    size: () => entries.size,
    ping: Effect.void,
    get,
    unsafeRead,
    set,
    getMany: (keys) => Effect.sync(() => keys.map((key) => touch(key)?.value ?? null)),
    setMany: (batch) =>
      Effect.sync(() => {
        const at = now()
        for (const [key, value, ttl] of batch) put(key, value, ttl === undefined ? Infinity : at + ttl)
      }),
    domainOf: undefined,
    invalidate: (key) => Effect.sync(() => lookup(key, now()) !== undefined && entries.delete(key)),
    clear: (prefix) =>
      Effect.sync(() => {
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
      }),
    count: (prefix) =>
      Effect.sync(() => {
        let n = 0
        const at = now()
        for (const [k, e] of entries) if (e.expiresAt > at && k.startsWith(prefix)) n++
        return n
      }),
    claim: (key, ttlMillis) => Effect.sync(() => putIfAbsent(key, "1", ttlMillis)),
    acquireLock: (key, token, ttlMillis) => Effect.sync(() => putIfAbsent(key, token, ttlMillis)),
    releaseLock: (key, token) => Effect.sync(() => lookup(key, now())?.value === token && entries.delete(key)),
    rateLimit: (request: RateLimitRequest) =>
      Effect.sync((): RateLimitDecision => {
        const at = now()
        if (++rateLimitCalls % 1024 === 0) sweepLimiterState(at)
        return memoryRateLimit(limiterState, request, at)
      }),
    unsafeReset,
    reset: Effect.sync(unsafeReset)
  }
}
