/**
 * The core's stores and breaker as the Effect 4 line uses them: each operation of the core's Redis store (a callback,
 * `Done`) is one `Effect.callback`; each of its memory store (synchronous) one `Effect.sync`. Nothing else: the
 * driver, the scripts, the deadlines and the memory store are the core's (`@effect-failclosed/core`), shared with the
 * Effect 3 line.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import {
  Breaker,
  type Decision,
  type Done,
  makeMemoryStore as coreMemoryStore,
  makeRedisStore as coreRedisStore,
  type MemoryStore as CoreMemoryStore,
  type RedisStore,
  type StoreFailure
} from "@effect-failclosed/core"
import type { RateLimitDecision } from "../DistributedCache.js"
import type { RedisClientService } from "../RedisClient.js"
import type { MemoryStore, Store } from "./store.js"

/** a core decision with Effect 4's Duration */
const decisionOf = (d: Decision): RateLimitDecision => ({
  allowed: d.allowed,
  remaining: d.remaining,
  retryAfter: d.retryAfterMillis === 0 ? Duration.zero : Duration.millis(d.retryAfterMillis)
})

/**
 * One call of the Redis store as one Effect. No canceler: with one, Effect wraps the wait in an interruption handler
 * per call; an interrupted fiber ignores a late reply, and the call's deadline ends it.
 */
const call = <A>(register: (done: Done<A>) => void): Effect.Effect<A, StoreFailure> =>
  Effect.callback<A, StoreFailure>((resume) =>
    register((failure, value) => resume(failure === undefined ? Effect.succeed(value) : Effect.fail(failure)))
  )

/** @internal */
export const fromRedisStore = (store: RedisStore): Store => ({
  backend: "redis",
  domainOf: store.domainOf,
  ping: call((done) => store.ping(done)),
  get: (key) => call((done) => store.get(key, done)),
  set: (key, value, ttl) => call((done) => store.set(key, value, ttl, done)),
  getMany: (keys) => call((done) => store.getMany(keys, done)),
  setMany: (entries) => call((done) => store.setMany(entries, done)),
  invalidate: (key) => call((done) => store.invalidate(key, done)),
  clear: (prefix) => call((done) => store.clear(prefix, done)),
  count: (prefix) => call((done) => store.count(prefix, done)),
  claim: (key, ttl) => call((done) => store.claim(key, ttl, done)),
  rateLimit: (request) =>
    Effect.map(
      call<Decision>((done) => store.rateLimit(request, done)),
      decisionOf
    ),
  acquireLock: (key, token, ttl) => call((done) => store.acquireLock(key, token, ttl, done)),
  releaseLock: (key, token) => call((done) => store.releaseLock(key, token, done))
})

/** @internal */
export const fromMemoryStore = (store: CoreMemoryStore): MemoryStore => ({
  backend: "local",
  domainOf: undefined,
  ping: Effect.void,
  get: (key) => Effect.sync(() => store.get(key)),
  set: (key, value, ttl) => Effect.sync(() => store.set(key, value, ttl)),
  getMany: (keys) => Effect.sync(() => store.getMany(keys)),
  setMany: (entries) => Effect.sync(() => store.setMany(entries)),
  invalidate: (key) => Effect.sync(() => store.invalidate(key)),
  clear: (prefix) => Effect.sync(() => store.clear(prefix)),
  count: (prefix) => Effect.sync(() => store.count(prefix)),
  claim: (key, ttl) => Effect.sync(() => store.claim(key, ttl)),
  rateLimit: (request) => Effect.sync(() => decisionOf(store.rateLimit(request))),
  acquireLock: (key, token, ttl) => Effect.sync(() => store.acquireLock(key, token, ttl)),
  releaseLock: (key, token) => Effect.sync(() => store.releaseLock(key, token)),
  read: store.read,
  reset: store.reset,
  size: store.size
})

/** @internal */
export const makeRedisStore = (redis: RedisClientService): Store =>
  fromRedisStore(
    coreRedisStore(redis.client, {
      commandTimeoutMillis: Duration.toMillis(redis.commandTimeout),
      describeError: redis.describeError
    })
  )

/** @internal */
export const makeMemoryStore = (options: { readonly capacity: number; readonly now: () => number }): MemoryStore =>
  fromMemoryStore(coreMemoryStore(options))

/** @internal */
export const makeBreaker = (now: () => number, cooldownMillis: number): Breaker => new Breaker(now, cooldownMillis)
