/**
 * The stores as Effects: the core's two stores (`RedisStore`, callbacks; `MemoryStore`, synchronous) seen through one
 * interface, {@link Store}, so that the policy (`policy.ts`) writes every operation once for both. A Redis operation
 * is one `Effect.async` around the core's call (what the Effect floor pays for an ioredis call, nothing more); a
 * memory operation is one `Effect.sync`.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import {
  type BatchEntry,
  type Decision,
  type Done,
  makeRedisStore,
  type MemoryStore,
  type RedisStore,
  type RedisStoreOptions,
  type StoreFailure
} from "@effect-failclosed/core"
import type { RateLimitDecision, RateLimitRequest } from "../DistributedCache.js"
import type { RedisClientService } from "../RedisClient.js"

/**
 * The operations every store offers, as Effects, named as the `DistributedCache` service names them (see the core's
 * `RedisStore` for what each does). `E` is how an operation fails: `StoreFailure` for Redis, `never` for memory.
 * @internal
 */
export interface Store<E = StoreFailure> {
  readonly backend: "redis" | "local"
  /** the failure domain of a key (see the core's `RedisStore.domainOf`); undefined: the store is one domain */
  readonly domainOf: ((key: string) => string) | undefined
  readonly ping: Effect.Effect<void, E>
  readonly get: (key: string) => Effect.Effect<string | null, E>
  readonly set: (key: string, value: string, ttlMillis: number | undefined) => Effect.Effect<void, E>
  readonly getMany: (keys: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<string | null>, E>
  readonly setMany: (entries: ReadonlyArray<BatchEntry>) => Effect.Effect<void, E>
  readonly invalidate: (key: string) => Effect.Effect<boolean, E>
  readonly clear: (prefix: string) => Effect.Effect<number, E>
  readonly count: (prefix: string) => Effect.Effect<number, E>
  readonly claim: (key: string, ttlMillis: number) => Effect.Effect<boolean, E>
  readonly rateLimit: (request: RateLimitRequest) => Effect.Effect<RateLimitDecision, E>
  readonly acquireLock: (key: string, token: string, ttlMillis: number) => Effect.Effect<boolean, E>
  readonly releaseLock: (key: string, token: string) => Effect.Effect<boolean, E>
}

/** a core decision as the service's (its wait as a Duration) */
const toRateLimitDecision = (d: Decision): RateLimitDecision => ({
  allowed: d.allowed,
  remaining: d.remaining,
  retryAfter: d.retryAfterMillis > 0 ? Duration.millis(d.retryAfterMillis) : Duration.zero
})

type Resume<A> = (effect: Effect.Effect<A, StoreFailure>) => void

/** the core's callback, resuming the fiber */
const resumeWith =
  <A>(resume: Resume<A>): Done<A> =>
  (failure, value) =>
    resume(failure === undefined ? Effect.succeed(value) : Effect.fail(failure))

/**
 * One core call as an Effect. No canceler: with one, Effect wraps the wait in `onInterrupt` (a mask and an exit
 * handler per call); an interrupted fiber ignores a late reply, and the call's deadline ends it.
 */
const callOf = <A>(call: (done: Done<A>) => void): Effect.Effect<A, StoreFailure> =>
  Effect.async<A, StoreFailure>((resume) => call(resumeWith(resume)))

/**
 * The Redis store as Effects. `get` and `set`, the hot calls, build their `Effect.async` directly (one closure fewer
 * than {@link callOf}).
 * @internal
 */
export const redisEffects = (store: RedisStore): Store => ({
  backend: "redis",
  domainOf: store.domainOf,
  ping: callOf(store.ping),
  get: (key) => Effect.async<string | null, StoreFailure>((resume) => store.get(key, resumeWith(resume))),
  set: (key, value, ttlMillis) =>
    Effect.async<void, StoreFailure>((resume) => store.set(key, value, ttlMillis, resumeWith(resume))),
  getMany: (keys) => callOf((done) => store.getMany(keys, done)),
  setMany: (entries) => callOf((done) => store.setMany(entries, done)),
  invalidate: (key) => callOf((done) => store.invalidate(key, done)),
  clear: (prefix) => callOf((done) => store.clear(prefix, done)),
  count: (prefix) => callOf((done) => store.count(prefix, done)),
  claim: (key, ttlMillis) => callOf((done) => store.claim(key, ttlMillis, done)),
  rateLimit: (request) =>
    Effect.map(
      callOf<Decision>((done) => store.rateLimit(request, done)),
      toRateLimitDecision
    ),
  acquireLock: (key, token, ttlMillis) => callOf((done) => store.acquireLock(key, token, ttlMillis, done)),
  releaseLock: (key, token) => callOf((done) => store.releaseLock(key, token, done))
})

/**
 * The memory store as Effects: each operation one `Effect.sync`.
 * @internal
 */
export const memoryEffects = (store: MemoryStore): Store<never> => ({
  backend: "local",
  domainOf: undefined,
  ping: Effect.void,
  get: (key) => Effect.sync(() => store.get(key)),
  set: (key, value, ttlMillis) => Effect.sync(() => store.set(key, value, ttlMillis)),
  getMany: (keys) => Effect.sync(() => store.getMany(keys)),
  setMany: (entries) => Effect.sync(() => store.setMany(entries)),
  invalidate: (key) => Effect.sync(() => store.invalidate(key)),
  clear: (prefix) => Effect.sync(() => store.clear(prefix)),
  count: (prefix) => Effect.sync(() => store.count(prefix)),
  claim: (key, ttlMillis) => Effect.sync(() => store.claim(key, ttlMillis)),
  rateLimit: (request) => Effect.sync(() => toRateLimitDecision(store.rateLimit(request))),
  acquireLock: (key, token, ttlMillis) => Effect.sync(() => store.acquireLock(key, token, ttlMillis)),
  releaseLock: (key, token) => Effect.sync(() => store.releaseLock(key, token))
})

/**
 * The core's Redis store over a `RedisClient`: its command timeout, its secret-free error texts.
 * @internal
 */
export const redisStoreOf = (
  redis: RedisClientService,
  options?: Omit<RedisStoreOptions, "commandTimeoutMillis" | "describeError">
): RedisStore =>
  makeRedisStore(redis.client, {
    ...options,
    commandTimeoutMillis: Duration.toMillis(redis.commandTimeout),
    describeError: redis.describeError
  })
