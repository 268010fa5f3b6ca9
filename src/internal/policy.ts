/**
 * Failure policy: turns a store (mechanism) into the DistributedCache service of one mode.
 * StrictDistributed never holds local state; ExplicitDegraded serves get/set/claim/rateLimit
 * from a node-local fallback while Redis is unavailable (marked, with one event per
 * transition); LocalOnly is memory only.
 */
import * as Effect from "effect/Effect"
import type { Backend, Cached, CacheStats, DistributedCacheService } from "../DistributedCache.js"
import { CacheBackendUnavailable, type CacheModeName } from "../errors.js"
import * as SecurityEvent from "../SecurityEvent.js"
import { type Breaker, CLOSED, OPEN } from "./breaker.js"
import type { MemoryStore } from "./memoryStore.js"
import type { Store, StoreFailure } from "./store.js"

const mark =
  (backend: Backend) =>
  <A>(value: A): Cached<A> => ({ value, backend, degraded: backend === "local_degraded" })
const fromRedis = mark("redis")
const fromLocal = mark("local")
const fromFallback = mark("local_degraded")

interface Counters {
  hits: number
  misses: number
  failures: number
}

const missOf = (backend: Backend): Cached<undefined> => ({
  value: undefined,
  backend,
  degraded: backend === "local_degraded"
})
const MISS_REDIS = missOf("redis")
const MISS_LOCAL = missOf("local")
const MISS_FALLBACK = missOf("local_degraded")

const countRead =
  (counters: Counters, hit: (value: string) => Cached<string>, miss: Cached<undefined>) =>
  (value: string | null): Cached<string | undefined> => {
    if (value === null) {
      counters.misses++
      return miss
    }
    counters.hits++
    return hit(value)
  }

const statsOf = (
  mode: CacheModeName,
  counters: Counters,
  backend: () => Backend,
  localEntries: () => number
): Effect.Effect<CacheStats> =>
  Effect.sync(() => {
    const reads = counters.hits + counters.misses
    const b = backend()
    return {
      mode,
      backend: b,
      degraded: b === "local_degraded",
      hits: counters.hits,
      misses: counters.misses,
      hitRate: reads === 0 ? 0 : counters.hits / reads,
      failures: counters.failures,
      localEntries: localEntries()
    }
  })

/** @internal */
export const makeLocal = (memory: MemoryStore, keyPrefix: string): DistributedCacheService => {
  const counters: Counters = { hits: 0, misses: 0, failures: 0 }
  const read = countRead(counters, fromLocal, MISS_LOCAL)
  return {
    mode: "LocalOnly",
    keyPrefix,
    stats: statsOf("LocalOnly", counters, () => "local", memory.size),
    get: (key) => Effect.map(memory.get(key), read),
    set: (key, value, ttl) => Effect.map(memory.set(key, value, ttl), fromLocal),
    invalidate: (key) => memory.delete(key),
    clear: (prefix) => memory.clear(prefix),
    count: (prefix) => memory.count(prefix),
    claim: (key, ttl) => Effect.map(memory.claim(key, ttl), fromLocal),
    rateLimit: (request) => Effect.map(memory.rateLimit(request), fromLocal)
  }
}

/**
 * Shared by the two Redis modes: admission through the breaker, failure classification,
 * events on transitions.
 */
const makeGuard = (options: {
  readonly mode: CacheModeName
  readonly breaker: Breaker
  readonly counters: Counters
  /**
   * Runs synchronously, in the same step as the breaker's transition (closed to open, or open to closed), so that
   * no other fiber can see the new breaker state before it has run.
   */
  readonly onTransition: () => void
}) => {
  const { breaker, counters, mode, onTransition } = options
  const unavailable = (operation: string, reason: string) => new CacheBackendUnavailable({ mode, operation, reason })

  const recovered = SecurityEvent.emit({
    event: "BACKEND_RECOVERED",
    mode,
    detail: "Redis answered a probe after the cooldown"
  })
  /** true when this probe closed the breaker (the transition has then been handled) */
  const probeSucceeded = (): boolean => {
    if (!breaker.probeSucceeded()) return false
    onTransition()
    return true
  }
  const wentDown = (reason: string) =>
    SecurityEvent.emit({
      event: "BACKEND_UNAVAILABLE_AT_RUNTIME",
      mode,
      detail:
        mode === "ExplicitDegraded"
          ? `Redis is unavailable (${reason}); get/set are served node-locally and marked degraded until it answers`
          : `Redis is unavailable (${reason}); operations fail with CacheBackendUnavailable until it answers`
    })

  /**
   * Runs `effect` against Redis; on unavailability, records the transition and continues with
   * `orElse` (the fallback, or a failure).
   */
  const run = <A, B>(
    operation: string,
    effect: Effect.Effect<A, StoreFailure>,
    onSuccess: (a: A) => B,
    orElse: (error: CacheBackendUnavailable) => Effect.Effect<B, CacheBackendUnavailable>
  ): Effect.Effect<B, CacheBackendUnavailable> =>
    Effect.suspend(() => {
      const admission = breaker.admit()
      if (admission === OPEN) {
        counters.failures++
        return orElse(unavailable(operation, "cooldown after a failure; Redis is not contacted until it ends"))
      }
      const generation = breaker.generation
      const isProbe = admission !== CLOSED
      const handle = (failure: StoreFailure): Effect.Effect<B, CacheBackendUnavailable> => {
        const error = unavailable(
          operation,
          failure.kind === "rejected" ? `Redis refused the command: ${failure.reason}` : failure.reason
        )
        if (failure.kind === "rejected") {
          // Redis answered: it is up, so this is not an outage; fail closed without a cooldown.
          if (isProbe && probeSucceeded()) return Effect.zipRight(recovered, Effect.fail(error))
          return Effect.fail(error)
        }
        counters.failures++
        if (breaker.failed(generation, isProbe)) {
          onTransition()
          return Effect.zipRight(wentDown(failure.reason), orElse(error))
        }
        return orElse(error)
      }
      if (!isProbe)
        return Effect.matchEffect(effect, { onFailure: handle, onSuccess: (a) => Effect.succeed(onSuccess(a)) })
      return Effect.matchEffect(effect, {
        onFailure: handle,
        onSuccess: (a) => (probeSucceeded() ? Effect.as(recovered, onSuccess(a)) : Effect.succeed(onSuccess(a)))
      }).pipe(Effect.onInterrupt(() => Effect.sync(() => breaker.probeAbandoned())))
    })

  return { run, unavailable }
}

const identity = <A>(a: A) => a

/** @internal */
export const makeStrict = (options: {
  readonly store: Store
  readonly breaker: Breaker
  readonly keyPrefix: string
}): DistributedCacheService => {
  const { breaker, store } = options
  const counters: Counters = { hits: 0, misses: 0, failures: 0 }
  const read = countRead(counters, fromRedis, MISS_REDIS)
  const guard = makeGuard({ mode: "StrictDistributed", breaker, counters, onTransition: () => {} })
  const fail = Effect.fail
  return {
    mode: "StrictDistributed",
    keyPrefix: options.keyPrefix,
    stats: statsOf(
      "StrictDistributed",
      counters,
      () => "redis",
      () => 0
    ),
    get: (key, operation = "get") => guard.run(operation, store.get(key), read, fail),
    set: (key, value, ttl, operation = "set") => guard.run(operation, store.set(key, value, ttl), fromRedis, fail),
    invalidate: (key) => guard.run("invalidate", store.delete(key), identity, fail),
    clear: (prefix) => guard.run("clear", store.clear(prefix), identity, fail),
    count: (prefix) => guard.run("count", store.count(prefix), identity, fail),
    claim: (key, ttl) => guard.run("claim", store.claim(key, ttl), fromRedis, fail),
    rateLimit: (request) => guard.run("rateLimit", store.rateLimit(request), fromRedis, fail)
  }
}

/** @internal */
export const makeDegraded = (options: {
  readonly store: Store
  readonly fallback: MemoryStore
  readonly breaker: Breaker
  readonly keyPrefix: string
}): DistributedCacheService => {
  const { breaker, fallback, store } = options
  const counters: Counters = { hits: 0, misses: 0, failures: 0 }
  const read = countRead(counters, fromRedis, MISS_REDIS)
  const readFallback = countRead(counters, fromFallback, MISS_FALLBACK)
  // The fallback is emptied at both transitions, in the same synchronous step as the breaker's: what was written
  // node-locally during an outage is never served after Redis answered again, not even during a later outage (a
  // fallback write that was admitted before the recovery but landed after it is dropped when the next outage starts).
  const guard = makeGuard({ mode: "ExplicitDegraded", breaker, counters, onTransition: fallback.unsafeReset })
  const fail = Effect.fail
  const local =
    <A>(effect: Effect.Effect<A>) =>
    () =>
      Effect.map(effect, fromFallback)
  return {
    mode: "ExplicitDegraded",
    keyPrefix: options.keyPrefix,
    stats: statsOf("ExplicitDegraded", counters, () => (breaker.isOpen ? "local_degraded" : "redis"), fallback.size),
    get: (key, operation = "get") =>
      guard.run(operation, store.get(key), read, () => Effect.map(fallback.get(key), readFallback)),
    set: (key, value, ttl, operation = "set") =>
      guard.run(operation, store.set(key, value, ttl), fromRedis, local(fallback.set(key, value, ttl))),
    // a distributed deletion cannot be confirmed locally: these fail closed in every mode
    invalidate: (key) => guard.run("invalidate", store.delete(key), identity, fail),
    clear: (prefix) => guard.run("clear", store.clear(prefix), identity, fail),
    // the fallback holds only what was written while degraded: no distributed count from it
    count: (prefix) => guard.run("count", store.count(prefix), identity, fail),
    claim: (key, ttl) => guard.run("claim", store.claim(key, ttl), fromRedis, local(fallback.claim(key, ttl))),
    rateLimit: (request) =>
      guard.run("rateLimit", store.rateLimit(request), fromRedis, local(fallback.rateLimit(request)))
  }
}
