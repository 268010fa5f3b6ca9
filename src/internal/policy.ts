/**
 * Failure policy: turns a store (mechanism) into the DistributedCache service of one mode.
 * StrictDistributed never holds local state; ExplicitDegraded serves get/set/claim/rateLimit
 * from a node-local fallback while Redis is unavailable (marked, with one event per
 * transition); LocalOnly is memory only.
 */
import * as Effect from "effect/Effect"
import type { Backend, Cached, CacheStats, DistributedCacheService, RateLimitDecision } from "../DistributedCache.js"
import { CacheBackendUnavailable, type CacheModeName } from "../errors.js"
import { type Breaker, CLOSED, OPEN } from "./breaker.js"
import type { MemoryStore } from "./memoryStore.js"
import {
  classify,
  emitSecurityEvent,
  type FailureReason,
  increment,
  isBuildingFeatureCall,
  isTraced,
  operationMetrics,
  recordDuration,
  stateGauges,
  traceOperation
} from "./observability.js"
import { matchStore, type Store, type StoreFailure } from "./store.js"

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

/** outcomes of the spans the policy opens itself (direct `DistributedCache` calls) */
const readOutcome = (entry: Cached<string | undefined>) => (entry.value === undefined ? "miss" : "hit")
const okOutcome = () => "ok"
const claimOutcome = (claimed: Cached<boolean>) => (claimed.value ? "ok" : "replay")
const rateLimitOutcome = (decision: Cached<RateLimitDecision>) => (decision.value.allowed ? "ok" : "denied")

/**
 * The synchronous reads of LocalOnly caches: a feature that finds one for its cache reads memory without an Effect
 * per step (see `MemoryStore.unsafeRead`). The cache's counters are kept as by `get`.
 */
const localReaders = new WeakMap<DistributedCacheService, (key: string) => Cached<string> | undefined>()

/**
 * The synchronous read of a LocalOnly cache, or undefined for every other cache.
 * @internal
 */
export const localReaderOf = (
  cache: DistributedCacheService
): ((key: string) => Cached<string> | undefined) | undefined =>
  // a Redis mode's cache (the common case on a hot path) is told apart without a WeakMap lookup
  cache.mode === "LocalOnly" ? localReaders.get(cache) : undefined

/** @internal */
export const makeLocal = (memory: MemoryStore, keyPrefix: string): DistributedCacheService => {
  const counters: Counters = { hits: 0, misses: 0, failures: 0 }
  const read = countRead(counters, fromLocal, MISS_LOCAL)
  const unsafeRead = (key: string): Cached<string> | undefined => {
    const entry = memory.unsafeRead(key)
    if (entry === undefined) counters.misses++
    else counters.hits++
    return entry
  }
  // Memory operations are not timed (two clock reads would cost more than the operation). A direct call is traced
  // when a tracer is installed; a call a feature builds is covered by the feature's span.
  const observed = <B>(operation: string, body: Effect.Effect<B>, outcome: (b: B) => string): Effect.Effect<B> =>
    isBuildingFeatureCall()
      ? body
      : Effect.withFiberRuntime((fiber) =>
          isTraced(fiber) ? traceOperation(fiber, "LocalOnly", "local", operation, body, outcome) : body
        )
  const service: DistributedCacheService = {
    mode: "LocalOnly",
    keyPrefix,
    stats: statsOf("LocalOnly", counters, () => "local", memory.size),
    get: (key, operation = "get") => observed(operation, Effect.map(memory.get(key), read), readOutcome),
    set: (key, value, ttl, operation = "set") =>
      observed(operation, Effect.map(memory.set(key, value, ttl), fromLocal), okOutcome),
    invalidate: (key) => observed("invalidate", memory.delete(key), okOutcome),
    clear: (prefix) => observed("clear", memory.clear(prefix), okOutcome),
    count: (prefix) => observed("count", memory.count(prefix), okOutcome),
    claim: (key, ttl) => observed("claim", Effect.map(memory.claim(key, ttl), fromLocal), claimOutcome),
    rateLimit: (request) => observed("rateLimit", Effect.map(memory.rateLimit(request), fromLocal), rateLimitOutcome)
  }
  localReaders.set(service, unsafeRead)
  return service
}

const COOLDOWN_REASON = "cooldown after a failure; Redis is not contacted until it ends"

/**
 * One breaker per failure domain of the store (`Store.domainOf`). The whole-store breaker (domain `""`) gates every
 * domain while it is open: a store without domains has only that one.
 */
class Domains {
  private readonly byDomain = new Map<string, Breaker>()
  constructor(readonly whole: Breaker) {}
  of(domain: string): Breaker {
    if (domain === "") return this.whole
    let breaker = this.byDomain.get(domain)
    if (breaker === undefined) {
      breaker = this.whole.sibling()
      this.byDomain.set(domain, breaker)
    }
    return breaker
  }
  get anyOpen(): boolean {
    if (this.whole.isOpen) return true
    for (const breaker of this.byDomain.values()) if (breaker.isOpen) return true
    return false
  }
}

/** the domain of operations that need every domain (clear, count) of a store that has domains */
const EVERY_DOMAIN = "every shard"
const wholeStore = () => ""
const domainsOf = (store: Store) => ({
  of: store.domainOf ?? wholeStore,
  every: store.domainOf === undefined ? "" : EVERY_DOMAIN
})
const redisOf = (label: string) => (label === "" ? "Redis" : `Redis (${label})`)

/**
 * Shared by the two Redis modes: admission through the breaker, failure classification,
 * events on transitions, metrics and spans.
 */
const makeGuard = (options: {
  readonly mode: CacheModeName
  readonly domains: Domains
  readonly counters: Counters
  /**
   * Runs synchronously, in the same step as the breaker's transition (closed to open, or open to closed), so that
   * no other fiber can see the new breaker state before it has run.
   */
  readonly onTransition: () => void
}) => {
  const { counters, domains, mode, onTransition } = options
  const metricsOf = operationMetrics(mode)
  const gauges = stateGauges(mode)
  gauges(domains.anyOpen)
  /** with domains, "down" is: any domain is in its cooldown */
  const transition = () => {
    gauges(domains.anyOpen)
    onTransition()
  }
  const unavailable = (operation: string, reason: string) => new CacheBackendUnavailable({ mode, operation, reason })
  const failure = (operation: string, kind: FailureReason, reason: string) =>
    classify(unavailable(operation, reason), kind)

  const recovered = (label: string) =>
    emitSecurityEvent({
      event: "BACKEND_RECOVERED",
      mode,
      detail: `${redisOf(label)} answered a probe after the cooldown`
    })
  /** true when this probe closed the breaker (the transition has then been handled) */
  const probeSucceeded = (breaker: Breaker): boolean => {
    if (!breaker.probeSucceeded()) return false
    transition()
    return true
  }
  const wentDown = (reason: string, label: string) =>
    emitSecurityEvent({
      event: "BACKEND_UNAVAILABLE_AT_RUNTIME",
      mode,
      detail:
        mode === "ExplicitDegraded"
          ? `${redisOf(label)} is unavailable (${reason}); get/set are served node-locally and marked degraded until it answers`
          : `${redisOf(label)} is unavailable (${reason}); operations fail with CacheBackendUnavailable until it answers`
    })

  /** admission, the Redis round trip (timed), failure classification and transitions */
  const attempt = <A, B>(
    operation: string,
    domain: string,
    effect: Effect.Effect<A, StoreFailure>,
    onSuccess: (a: A) => B,
    orElse: (error: CacheBackendUnavailable) => Effect.Effect<B, CacheBackendUnavailable>
  ): Effect.Effect<B, CacheBackendUnavailable> => {
    const metrics = metricsOf(operation)
    let breaker = domains.whole
    let admission = breaker.admit()
    if (admission === CLOSED && domain !== "") {
      breaker = domains.of(domain)
      admission = breaker.admit()
    }
    const label = breaker === domains.whole ? "" : domain
    if (admission === OPEN) {
      counters.failures++
      increment(metrics.cooldown)
      return orElse(failure(operation, "cooldown", COOLDOWN_REASON))
    }
    const start = performance.now()
    const generation = breaker.generation
    const isProbe = admission !== CLOSED
    const handle = (storeFailure: StoreFailure): Effect.Effect<B, CacheBackendUnavailable> => {
      recordDuration(metrics, start)
      if (storeFailure.kind === "rejected") {
        // Redis answered: it is up, so this is not an outage; fail closed without a cooldown.
        increment(metrics.rejected)
        const error = failure(operation, "rejected", `Redis refused the command: ${storeFailure.reason}`)
        if (isProbe && probeSucceeded(breaker)) return Effect.zipRight(recovered(label), Effect.fail(error))
        return Effect.fail(error)
      }
      counters.failures++
      increment(metrics.unavailable)
      const error = failure(operation, "unavailable", storeFailure.reason)
      if (breaker.failed(generation, isProbe)) {
        transition()
        return Effect.zipRight(wentDown(storeFailure.reason, label), orElse(error))
      }
      return orElse(error)
    }
    if (!isProbe) {
      return matchStore(effect, handle, (a) => {
        recordDuration(metrics, start)
        return Effect.succeed(onSuccess(a))
      })
    }
    return Effect.matchEffect(effect, {
      onFailure: handle,
      onSuccess: (a) => {
        recordDuration(metrics, start)
        return probeSucceeded(breaker) ? Effect.as(recovered(label), onSuccess(a)) : Effect.succeed(onSuccess(a))
      }
    }).pipe(Effect.onInterrupt(() => Effect.sync(() => breaker.probeAbandoned())))
  }

  /**
   * Runs `effect` against Redis; on unavailability, records the transition and continues with
   * `orElse` (the fallback, or a failure). `outcome` names a result in the span of a direct call.
   */
  const run = <A, B>(
    operation: string,
    domain: string,
    effect: Effect.Effect<A, StoreFailure>,
    onSuccess: (a: A) => B,
    orElse: (error: CacheBackendUnavailable) => Effect.Effect<B, CacheBackendUnavailable>,
    outcome: (b: B) => string
  ): Effect.Effect<B, CacheBackendUnavailable> =>
    Effect.withFiberRuntime((fiber) =>
      isTraced(fiber)
        ? traceOperation(
            fiber,
            mode,
            "redis",
            operation,
            // admitted inside the span, so that nothing can interrupt between the admission and the round trip
            Effect.suspend(() => attempt(operation, domain, effect, onSuccess, orElse)),
            outcome
          )
        : attempt(operation, domain, effect, onSuccess, orElse)
    )

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
  const domain = domainsOf(store)
  const guard = makeGuard({
    mode: "StrictDistributed",
    domains: new Domains(breaker),
    counters,
    onTransition: () => {}
  })
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
    get: (key, operation = "get") => guard.run(operation, domain.of(key), store.get(key), read, fail, readOutcome),
    set: (key, value, ttl, operation = "set") =>
      guard.run(operation, domain.of(key), store.set(key, value, ttl), fromRedis, fail, okOutcome),
    invalidate: (key) => guard.run("invalidate", domain.of(key), store.delete(key), identity, fail, okOutcome),
    clear: (prefix) => guard.run("clear", domain.every, store.clear(prefix), identity, fail, okOutcome),
    count: (prefix) => guard.run("count", domain.every, store.count(prefix), identity, fail, okOutcome),
    claim: (key, ttl) => guard.run("claim", domain.of(key), store.claim(key, ttl), fromRedis, fail, claimOutcome),
    rateLimit: (request) =>
      guard.run("rateLimit", domain.of(request.key), store.rateLimit(request), fromRedis, fail, rateLimitOutcome)
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
  const domains = new Domains(breaker)
  const domain = domainsOf(store)
  const guard = makeGuard({ mode: "ExplicitDegraded", domains, counters, onTransition: fallback.unsafeReset })
  const fail = Effect.fail
  const local =
    <A>(effect: Effect.Effect<A>) =>
    () =>
      Effect.map(effect, fromFallback)
  return {
    mode: "ExplicitDegraded",
    keyPrefix: options.keyPrefix,
    stats: statsOf("ExplicitDegraded", counters, () => (domains.anyOpen ? "local_degraded" : "redis"), fallback.size),
    get: (key, operation = "get") =>
      guard.run(
        operation,
        domain.of(key),
        store.get(key),
        read,
        () => Effect.map(fallback.get(key), readFallback),
        readOutcome
      ),
    set: (key, value, ttl, operation = "set") =>
      guard.run(
        operation,
        domain.of(key),
        store.set(key, value, ttl),
        fromRedis,
        local(fallback.set(key, value, ttl)),
        okOutcome
      ),
    // a distributed deletion cannot be confirmed locally: these fail closed in every mode
    invalidate: (key) => guard.run("invalidate", domain.of(key), store.delete(key), identity, fail, okOutcome),
    clear: (prefix) => guard.run("clear", domain.every, store.clear(prefix), identity, fail, okOutcome),
    // the fallback holds only what was written while degraded: no distributed count from it
    count: (prefix) => guard.run("count", domain.every, store.count(prefix), identity, fail, okOutcome),
    claim: (key, ttl) =>
      guard.run(
        "claim",
        domain.of(key),
        store.claim(key, ttl),
        fromRedis,
        local(fallback.claim(key, ttl)),
        claimOutcome
      ),
    rateLimit: (request) =>
      guard.run(
        "rateLimit",
        domain.of(request.key),
        store.rateLimit(request),
        fromRedis,
        local(fallback.rateLimit(request)),
        rateLimitOutcome
      )
  }
}
