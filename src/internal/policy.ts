/**
 * The policy floor: turns a store into the `DistributedCache` service of one mode. The service's operations are
 * listed once ({@link makeService}); a mode differs only in its {@link Guard}, what it does around one store
 * operation:
 *
 * - LocalOnly runs it on memory;
 * - StrictDistributed admits it through the breaker of the key's failure domain, runs it on Redis, and turns an
 *   unavailable Redis into `CacheBackendUnavailable` (with one event per transition);
 * - ExplicitDegraded does the same, but serves the operations that may fall back (get, set, claim, rateLimit and
 *   the locks: `FALLS_BACK`) from a node-local memory store while Redis is unavailable, marked `local_degraded`.
 */
import * as Effect from "effect/Effect"
import type {
  Backend,
  Cached,
  CacheGet,
  CacheHealth,
  CacheStats,
  DistributedCacheService
} from "../DistributedCache.js"
import type { CacheModeName } from "../DistributedCache.js"
import { CacheBackendUnavailable } from "../errors.js"
import { type Breaker, CLOSED, type MemoryStore, OPEN, type StoreFailure } from "@effect-failclosed/core"
import { makeCached } from "./cached.js"
import { NearCache, type RefillRead } from "./nearCache.js"
import {
  classify,
  emitSecurityEvent,
  type FailureReason,
  increment,
  isTraced,
  type Operation,
  operationMetrics,
  recordDuration,
  stateGauges,
  traceStore
} from "./observability.js"
import type { Tracking } from "./redis/tracking.js"
import { memoryEffects, type Store } from "./store.js"

/**
 * The operations an ExplicitDegraded cache serves node-locally while Redis is unavailable, with how its runtime event
 * names them (every one of them: a reader of the event learns what went node-local).
 */
const FALLS_BACK: ReadonlyMap<Operation, string> = new Map<Operation, string>([
  ["get", "get"],
  ["set", "set"],
  ["getMany", "getMany"],
  ["setMany", "setMany"],
  ["rateLimit", "rate-limit decisions"],
  ["claim", "replay claims"],
  ["acquireLock", "getOrCompute locks"],
  ["releaseLock", "getOrCompute locks"]
])

/** what the ExplicitDegraded runtime event says is served node-locally @internal */
export const NODE_LOCAL_OPERATIONS = [...new Set(FALLS_BACK.values())].join(", ")

/**
 * A store failure's reason in this library's words, for a security event (the driver's own text, which may quote
 * ioredis internals, stays in the error and in a Debug log): `timeout`, a Redis reply code, `connection refused`
 * or `connection lost`.
 * @internal
 */
export const outageOf = (reason: string): string => {
  if (reason === "timeout") return reason
  const reply = /^([A-Z]{4,})\b/.exec(reason)
  if (reply !== null) return `Redis replied ${reply[1]}`
  return /ECONNREFUSED/.test(reason) ? "connection refused" : "connection lost"
}

/**
 * What a mode does around one store operation: `use` is the operation, written once against any store (the guard
 * applies it to Redis, or to memory); `key` its key, undefined for an operation on the whole store (clear, count).
 * @internal
 */
export interface Guard {
  readonly mode: CacheModeName
  readonly run: <A>(
    operation: Operation,
    key: string | undefined,
    use: <E>(store: Store<E>) => Effect.Effect<A, E>
  ) => Effect.Effect<Cached<A>, CacheBackendUnavailable>
}

interface Counters {
  hits: number
  misses: number
  failures: number
}

/** a result's marks (internal/cached): no spread of a marks object per call */
const marked =
  (backend: Backend) =>
  <A>(value: A): Cached<A> =>
    makeCached(value, backend, false, false, undefined)
const fromRedis = marked("redis")
const fromLocal = marked("local")
const fromFallback = marked("local_degraded")
const MISS: Record<Backend, Cached<undefined>> = {
  redis: fromRedis(undefined),
  local: fromLocal(undefined),
  local_degraded: fromFallback(undefined)
}
const valueOf = <A>(cached: Cached<A>): A => cached.value

/** The `DistributedCache` service of a guard: every operation, listed once for the three modes. */
const makeService = (options: {
  readonly guard: Guard
  readonly keyPrefix: string
  readonly counters: Counters
  /** the backend that serves now */
  readonly backend: () => Backend
  /** entries held node-locally */
  readonly localEntries: () => number
  /** LocalOnly: the memory store, read synchronously by `get.local` */
  readonly memory?: MemoryStore | undefined
  /** the Redis modes: the invalidation connections of the near caches, and their background refill */
  readonly near?: { readonly tracking: Tracking; readonly refill: RefillRead } | undefined
  readonly health: Effect.Effect<CacheHealth>
}): DistributedCacheService => {
  const { counters, guard, memory, near } = options
  const mode = guard.mode
  const read = (entry: Cached<string | null>): Cached<string | undefined> => {
    if (entry.value === null) {
      counters.misses++
      return MISS[entry.backend]
    }
    counters.hits++
    return entry as Cached<string>
  }
  // a flatMap to a succeeded Effect: `Effect.map` would add a closure and a `sync` step per call
  const readEffect = (entry: Cached<string | null>) => Effect.succeed(read(entry))
  const getEffect = (key: string) =>
    Effect.flatMap(
      guard.run("get", key, (store) => store.get(key)),
      readEffect
    )
  const get: CacheGet =
    memory === undefined
      ? getEffect
      : Object.assign(getEffect, {
          local: (key: string): Cached<string> | undefined => {
            const entry = memory.read(key)
            if (entry === undefined) counters.misses++
            else counters.hits++
            return entry
          }
        })
  return {
    mode,
    keyPrefix: options.keyPrefix,
    stats: Effect.sync((): CacheStats => {
      const reads = counters.hits + counters.misses
      const backend = options.backend()
      return {
        mode,
        backend,
        degraded: backend === "local_degraded",
        hits: counters.hits,
        misses: counters.misses,
        hitRate: reads === 0 ? 0 : counters.hits / reads,
        failures: counters.failures,
        localEntries: options.localEntries()
      }
    }),
    health: options.health,
    get,
    set: (key, value, ttl) => guard.run("set", key, (store) => store.set(key, value, ttl)),
    // a batch spans failure domains: it is admitted as a whole-store operation, and falls back as a whole
    getMany: (keys) =>
      Effect.map(
        guard.run("getMany", keys.length === 1 ? keys[0] : undefined, (store) => store.getMany(keys)),
        (read) => {
          for (const value of read.value) {
            if (value === null) counters.misses++
            else counters.hits++
          }
          return read
        }
      ),
    setMany: (entries) =>
      guard.run("setMany", entries.length === 1 ? entries[0]![0] : undefined, (store) => store.setMany(entries)),
    invalidate: (key) =>
      Effect.map(
        guard.run("invalidate", key, (store) => store.invalidate(key)),
        valueOf
      ),
    clear: (prefix) =>
      Effect.map(
        guard.run("clear", undefined, (store) => store.clear(prefix)),
        valueOf
      ),
    count: (prefix) =>
      Effect.map(
        guard.run("count", undefined, (store) => store.count(prefix)),
        valueOf
      ),
    claim: (key, ttl) => guard.run("claim", key, (store) => store.claim(key, ttl)),
    rateLimit: (request) => guard.run("rateLimit", request.key, (store) => store.rateLimit(request)),
    acquireLock: (key, token, ttl) => guard.run("acquireLock", key, (store) => store.acquireLock(key, token, ttl)),
    releaseLock: (key, token) => guard.run("releaseLock", key, (store) => store.releaseLock(key, token)),
    nearCache: near === undefined ? undefined : (settings) => new NearCache(near.tracking, settings, near.refill)
  }
}

/** Spans of direct `DistributedCache` calls (a feature's call is covered by the feature's span). */
const traced = <A, E>(
  mode: CacheModeName,
  backend: Backend,
  operation: Operation,
  body: () => Effect.Effect<A, E>
): Effect.Effect<A, E> =>
  Effect.withFiberRuntime((fiber) =>
    isTraced(fiber)
      ? // run inside the span, so that nothing can interrupt between an admission and the round trip
        traceStore(fiber, mode, backend, operation, Effect.suspend(body))
      : body()
  )

/** @internal */
export const makeLocal = (memory: MemoryStore, keyPrefix: string): DistributedCacheService => {
  const counters: Counters = { hits: 0, misses: 0, failures: 0 }
  // memory operations are not timed: two clock reads would cost more than the operation
  const effects = memoryEffects(memory)
  const guard: Guard = {
    mode: "LocalOnly",
    run: (operation, _key, use) => traced("LocalOnly", "local", operation, () => Effect.map(use(effects), fromLocal))
  }
  const health = Effect.succeed<CacheHealth>({
    mode: "LocalOnly",
    backend: "local",
    reachable: null,
    breakers: [],
    nearCaches: []
  })
  return makeService({
    guard,
    keyPrefix,
    counters,
    backend: () => "local",
    localEntries: memory.size,
    memory,
    health
  })
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
  /** each breaker's state, for the health check: the whole store's (`all`), then each domain's that served traffic */
  states(): Array<{ readonly domain: string; readonly open: boolean }> {
    const states = [{ domain: "all", open: this.whole.isOpen }]
    for (const [domain, breaker] of this.byDomain) states.push({ domain, open: breaker.isOpen })
    return states
  }
}

/**
 * The health of a Redis mode: a PING sent beside the breakers (bounded by the store's command timeout; it neither
 * waits for a cooldown nor ends one), then the breakers and near caches as they are once it answered.
 */
const redisHealth = (
  mode: CacheModeName,
  store: Store,
  domains: Domains,
  backend: () => Backend,
  tracking: Tracking | undefined
): Effect.Effect<CacheHealth> =>
  Effect.map(Effect.match(store.ping, { onFailure: () => false, onSuccess: () => true }), (reachable): CacheHealth => ({
    mode,
    backend: backend(),
    reachable,
    breakers: domains.states(),
    nearCaches: tracking === undefined ? [] : tracking.keyspaceProofs()
  }))

/** the domain of operations that need every domain (clear, count) of a store that has domains */
const EVERY_DOMAIN = "every shard"
const redisOf = (label: string) => (label === "" ? "Redis" : `Redis (${label})`)

/**
 * The guard of the two Redis modes: admission through the breaker of the key's domain, the round trip (timed),
 * failure classification, events on transitions; `fallback` (ExplicitDegraded) serves while Redis is unavailable.
 */
const redisGuard = (options: {
  readonly mode: CacheModeName
  readonly store: Store
  readonly breaker: Breaker
  readonly fallback: MemoryStore | undefined
  readonly counters: Counters
}): { readonly guard: Guard; readonly domains: Domains; readonly refill: RefillRead } => {
  const { counters, fallback, mode, store } = options
  const fallbackEffects = fallback === undefined ? undefined : memoryEffects(fallback)
  const domains = new Domains(options.breaker)
  const domainOf = store.domainOf
  const metricsOf = operationMetrics(mode)
  const gauges = stateGauges(mode)
  gauges(domains.anyOpen)
  // Runs in the same synchronous step as the breaker's transition, so no other fiber sees the new state before. The
  // fallback is emptied at both transitions: what was written node-locally during an outage is never served after
  // Redis answered again, not even during a later outage.
  const transition = () => {
    gauges(domains.anyOpen)
    fallback?.reset()
  }
  const failure = (operation: string, kind: FailureReason, reason: string) =>
    classify(new CacheBackendUnavailable({ mode, operation, reason }), kind)
  const recovered = (label: string) =>
    emitSecurityEvent({
      event: "BACKEND_RECOVERED",
      mode,
      detail: `${redisOf(label)} answered a probe after the cooldown`
    })
  const wentDown = (reason: string, label: string) =>
    Effect.zipRight(
      emitSecurityEvent({
        event: "BACKEND_UNAVAILABLE_AT_RUNTIME",
        mode,
        detail:
          fallback !== undefined
            ? `${redisOf(label)} is unavailable (${outageOf(reason)}); ${NODE_LOCAL_OPERATIONS} are served node-locally and marked degraded until it answers; invalidate, clear and count fail with CacheBackendUnavailable`
            : `${redisOf(label)} is unavailable (${outageOf(reason)}); operations fail with CacheBackendUnavailable until it answers`
      }),
      // the driver's own words, for debugging (scrubbed of secrets by the store)
      Effect.logDebug(`effect-failclosed: ${redisOf(label)} became unavailable: ${reason}`)
    )
  /** true when this probe closed the breaker (the transition has then been handled) */
  const probeSucceeded = (breaker: Breaker): boolean => {
    if (!breaker.probeSucceeded()) return false
    transition()
    return true
  }

  const attempt = <A>(
    operation: Operation,
    key: string | undefined,
    use: <E>(store: Store<E>) => Effect.Effect<A, E>
  ): Effect.Effect<Cached<A>, CacheBackendUnavailable> => {
    const metrics = metricsOf(operation)
    const orElse: (error: CacheBackendUnavailable) => Effect.Effect<Cached<A>, CacheBackendUnavailable> =
      fallbackEffects !== undefined && FALLS_BACK.has(operation)
        ? () => Effect.map(use(fallbackEffects), fromFallback)
        : Effect.fail
    let breaker = domains.whole
    let admission = breaker.admit()
    const domain = domainOf === undefined ? "" : key === undefined ? EVERY_DOMAIN : domainOf(key)
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
    const onFailure = (storeFailure: StoreFailure): Effect.Effect<Cached<A>, CacheBackendUnavailable> => {
      recordDuration(metrics, start)
      if (storeFailure.kind === "rejected") {
        // Redis answered: it is up, so this is not an outage; fail closed without a cooldown
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
    const onSuccess = (a: A): Effect.Effect<Cached<A>> => {
      recordDuration(metrics, start)
      if (isProbe && probeSucceeded(breaker)) return Effect.as(recovered(label), fromRedis(a))
      return Effect.succeed(fromRedis(a))
    }
    const round = Effect.matchEffect(use(store), { onFailure, onSuccess })
    return isProbe ? Effect.onInterrupt(round, () => Effect.sync(() => breaker.probeAbandoned())) : round
  }

  /**
   * A near cache's background read of a key after its own write's invalidation: admitted only while the breaker of
   * the key's domain is closed (never while Redis is held unavailable, never as the probe), and its failure is left
   * to the foreground operations to find: a background read has no caller to fail and no application Logger to
   * send an event to. Never served from the fallback.
   */
  const refill: RefillRead = (key) => {
    const domain = domainOf === undefined ? "" : domainOf(key)
    if (domains.whole.isOpen || (domain !== "" && domains.of(domain).isOpen)) return Effect.succeed(undefined)
    return Effect.orElseSucceed(store.get(key), () => undefined)
  }

  return {
    domains,
    refill,
    guard: {
      mode,
      run: (operation, key, use) => traced(mode, "redis", operation, () => attempt(operation, key, use))
    }
  }
}

/** @internal */
export const makeStrict = (options: {
  readonly store: Store
  readonly breaker: Breaker
  readonly keyPrefix: string
  readonly tracking?: Tracking | undefined
}): DistributedCacheService => {
  const counters: Counters = { hits: 0, misses: 0, failures: 0 }
  const { domains, guard, refill } = redisGuard({
    ...options,
    mode: "StrictDistributed",
    fallback: undefined,
    counters
  })
  const backend = (): Backend => "redis"
  return makeService({
    guard,
    keyPrefix: options.keyPrefix,
    counters,
    backend,
    localEntries: () => 0,
    near: options.tracking === undefined ? undefined : { tracking: options.tracking, refill },
    health: redisHealth("StrictDistributed", options.store, domains, backend, options.tracking)
  })
}

/** @internal */
export const makeDegraded = (options: {
  readonly store: Store
  readonly fallback: MemoryStore
  readonly breaker: Breaker
  readonly keyPrefix: string
  readonly tracking?: Tracking | undefined
}): DistributedCacheService => {
  const counters: Counters = { hits: 0, misses: 0, failures: 0 }
  const { domains, guard, refill } = redisGuard({ ...options, mode: "ExplicitDegraded", counters })
  const backend = (): Backend => (domains.anyOpen ? "local_degraded" : "redis")
  return makeService({
    guard,
    keyPrefix: options.keyPrefix,
    counters,
    backend,
    localEntries: options.fallback.size,
    near: options.tracking === undefined ? undefined : { tracking: options.tracking, refill },
    health: redisHealth("ExplicitDegraded", options.store, domains, backend, options.tracking)
  })
}
