/**
 * The policy: turns a store into the `DistributedCache` service of one mode (the Effect 4 line's copy of the Effect 3
 * line's policy: it is Effect code — its errors, events and fallbacks are Effects of one line — while its state, the
 * breaker, is the core's). The service's operations are listed once; a mode differs only in what it does around one
 * store operation:
 *
 * - LocalOnly runs it on memory;
 * - StrictDistributed admits it through the breaker of the key's failure domain, runs it on Redis, and turns an
 *   unavailable Redis into `CacheBackendUnavailable` (one security event per transition);
 * - ExplicitDegraded does the same, but serves get, set, claim, rateLimit and the locks from a node-local memory
 *   store while Redis is unavailable, marked `local_degraded`.
 */
import * as Effect from "effect/Effect"
import {
  type Breaker,
  BreakerDomains,
  CLOSED,
  NearCache,
  type NearRefill,
  OPEN,
  type Tracking
} from "@effect-failclosed/core"
import type { Backend, Cached, CacheModeName, CacheStats, DistributedCacheService } from "../DistributedCache.js"
import { CacheBackendUnavailable } from "../errors.js"
import * as SecurityEvent from "../SecurityEvent.js"
import type { MemoryStore, Store, StoreFailure } from "./store.js"

type Operation =
  | "get"
  | "set"
  | "getMany"
  | "setMany"
  | "invalidate"
  | "clear"
  | "count"
  | "claim"
  | "rateLimit"
  | "acquireLock"
  | "releaseLock"

/** the operations an ExplicitDegraded cache serves node-locally while Redis is unavailable */
const FALLS_BACK: ReadonlySet<Operation> = new Set<Operation>([
  "get",
  "set",
  "getMany",
  "setMany",
  "claim",
  "rateLimit",
  "acquireLock",
  "releaseLock"
])

interface Counters {
  hits: number
  misses: number
  failures: number
}

type Use<A> = <E>(store: Store<E>) => Effect.Effect<A, E>

interface Guard {
  readonly mode: CacheModeName
  readonly run: <A>(
    operation: Operation,
    key: string | undefined,
    use: Use<A>
  ) => Effect.Effect<Cached<A>, CacheBackendUnavailable>
}

const marked =
  (backend: Backend) =>
  <A>(value: A): Cached<A> => ({ value, backend, degraded: backend === "local_degraded", near: false, stale: false })
const fromRedis = marked("redis")
const fromLocal = marked("local")
const fromFallback = marked("local_degraded")
const MISS: Record<Backend, Cached<undefined>> = {
  redis: fromRedis(undefined),
  local: fromLocal(undefined),
  local_degraded: fromFallback(undefined)
}
const valueOf = <A>(cached: Cached<A>): A => cached.value

/** the near caches' counters: this line keeps no metrics yet */
const NO_COUNT = { hit: () => {}, miss: () => {}, evicted: () => {}, flushed: () => {} }

const makeService = (options: {
  readonly guard: Guard
  readonly keyPrefix: string
  readonly counters: Counters
  readonly backend: () => Backend
  readonly localEntries: () => number
  /** the Redis modes: the invalidation connections of the near caches, and their background refill */
  readonly near?: { readonly tracking: Tracking; readonly refill: NearRefill } | undefined
}): DistributedCacheService => {
  const near = options.near
  const { counters, guard } = options
  const read = (entry: Cached<string | null>): Cached<string | undefined> => {
    if (entry.value === null) {
      counters.misses++
      return MISS[entry.backend]
    }
    counters.hits++
    return entry as Cached<string>
  }
  return {
    mode: guard.mode,
    keyPrefix: options.keyPrefix,
    stats: Effect.sync((): CacheStats => {
      const reads = counters.hits + counters.misses
      const backend = options.backend()
      return {
        mode: guard.mode,
        backend,
        degraded: backend === "local_degraded",
        hits: counters.hits,
        misses: counters.misses,
        hitRate: reads === 0 ? 0 : counters.hits / reads,
        failures: counters.failures,
        localEntries: options.localEntries()
      }
    }),
    get: (key) =>
      Effect.map(
        guard.run("get", key, (store) => store.get(key)),
        read
      ),
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
    nearCache:
      near === undefined
        ? undefined
        : (settings) =>
            // monotonic time for the proof of coherence: the native clock, as the Effect 3 line
            new NearCache(near.tracking, settings, near.refill, NO_COUNT, performance.now.bind(performance))
  }
}

/** @internal */
export const makeLocal = (memory: MemoryStore, keyPrefix: string): DistributedCacheService => {
  const counters: Counters = { hits: 0, misses: 0, failures: 0 }
  const guard: Guard = { mode: "LocalOnly", run: (_operation, _key, use) => Effect.map(use(memory), fromLocal) }
  const service = makeService({ guard, keyPrefix, counters, backend: () => "local", localEntries: memory.size })
  // the synchronous read the core's read pipeline answers LocalOnly reads from, counted as `get` counts
  const local = (key: string): Cached<string> | undefined => {
    const entry = memory.read(key)
    if (entry === undefined) counters.misses++
    else counters.hits++
    return entry
  }
  const get = service.get
  return { ...service, get: Object.assign((key: string) => get(key), { local }) }
}

const COOLDOWN_REASON = "cooldown after a failure; Redis is not contacted until it ends"
const EVERY_DOMAIN = "every shard"
const redisOf = (label: string) => (label === "" ? "Redis" : `Redis (${label})`)

const redisGuard = (options: {
  readonly mode: CacheModeName
  readonly store: Store
  readonly breaker: Breaker
  readonly fallback: MemoryStore | undefined
  readonly counters: Counters
}): { readonly guard: Guard; readonly domains: BreakerDomains; readonly refill: NearRefill } => {
  const { counters, fallback, mode, store } = options
  const domains = new BreakerDomains(options.breaker)
  const domainOf = store.domainOf
  // what was written node-locally during an outage is never served after Redis answered again
  const transition = () => fallback?.reset()
  const failure = (operation: string, reason: string) => new CacheBackendUnavailable({ mode, operation, reason })
  const recovered = (label: string) =>
    SecurityEvent.emit({
      event: "BACKEND_RECOVERED",
      mode,
      detail: `${redisOf(label)} answered a probe after the cooldown`
    })
  const wentDown = (reason: string, label: string) =>
    SecurityEvent.emit({
      event: "BACKEND_UNAVAILABLE_AT_RUNTIME",
      mode,
      detail:
        fallback !== undefined
          ? `${redisOf(label)} is unavailable (${reason}); get, set, rate-limit decisions, replay claims and ` +
            `getOrCompute locks are served node-locally and marked degraded until it answers`
          : `${redisOf(label)} is unavailable (${reason}); operations fail with CacheBackendUnavailable until it answers`
    })
  const probeSucceeded = (breaker: Breaker): boolean => {
    if (!breaker.probeSucceeded()) return false
    transition()
    return true
  }

  const attempt = <A>(
    operation: Operation,
    key: string | undefined,
    use: Use<A>
  ): Effect.Effect<Cached<A>, CacheBackendUnavailable> => {
    const orElse: (error: CacheBackendUnavailable) => Effect.Effect<Cached<A>, CacheBackendUnavailable> =
      fallback !== undefined && FALLS_BACK.has(operation) ? () => Effect.map(use(fallback), fromFallback) : Effect.fail
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
      return orElse(failure(operation, COOLDOWN_REASON))
    }
    const generation = breaker.generation
    const isProbe = admission !== CLOSED
    const onFailure = (storeFailure: StoreFailure): Effect.Effect<Cached<A>, CacheBackendUnavailable> => {
      if (storeFailure.kind === "rejected") {
        // Redis answered: it is up, so this is not an outage; fail closed without a cooldown
        const error = failure(operation, `Redis refused the command: ${storeFailure.reason}`)
        if (isProbe && probeSucceeded(breaker)) return Effect.andThen(recovered(label), Effect.fail(error))
        return Effect.fail(error)
      }
      counters.failures++
      const error = failure(operation, storeFailure.reason)
      if (breaker.failed(generation, isProbe)) {
        transition()
        return Effect.andThen(wentDown(storeFailure.reason, label), orElse(error))
      }
      return orElse(error)
    }
    const onSuccess = (a: A): Effect.Effect<Cached<A>> => {
      if (isProbe && probeSucceeded(breaker)) return Effect.as(recovered(label), fromRedis(a))
      return Effect.succeed(fromRedis(a))
    }
    const round = Effect.matchEffect(use(store), { onFailure, onSuccess })
    return isProbe ? Effect.onInterrupt(round, () => Effect.sync(() => breaker.probeAbandoned())) : round
  }

  /**
   * A near cache's background read of a key after its own write's invalidation: only while the breaker of the key's
   * domain is closed (never while Redis is held unavailable, never as the probe), never from the fallback; a failure
   * is left to the foreground operations to find.
   */
  const refill: NearRefill = (key, done) => {
    const domain = domainOf === undefined ? "" : domainOf(key)
    if (domains.whole.isOpen || (domain !== "" && domains.of(domain).isOpen)) return done(undefined)
    Effect.runCallback(
      Effect.orElseSucceed(store.get(key), () => undefined),
      {
        onExit: (exit) => done(exit._tag === "Success" ? exit.value : undefined)
      }
    )
  }

  return { domains, refill, guard: { mode, run: attempt } }
}

/** @internal */
export const makeStrict = (options: {
  readonly store: Store
  readonly breaker: Breaker
  readonly keyPrefix: string
  readonly tracking: Tracking
}): DistributedCacheService => {
  const counters: Counters = { hits: 0, misses: 0, failures: 0 }
  const { guard, refill } = redisGuard({ ...options, mode: "StrictDistributed", fallback: undefined, counters })
  return makeService({
    guard,
    keyPrefix: options.keyPrefix,
    counters,
    backend: () => "redis",
    localEntries: () => 0,
    near: { tracking: options.tracking, refill }
  })
}

/** @internal */
export const makeDegraded = (options: {
  readonly store: Store
  readonly fallback: MemoryStore
  readonly breaker: Breaker
  readonly keyPrefix: string
  readonly tracking: Tracking
}): DistributedCacheService => {
  const counters: Counters = { hits: 0, misses: 0, failures: 0 }
  const { domains, guard, refill } = redisGuard({ ...options, mode: "ExplicitDegraded", counters })
  return makeService({
    guard,
    keyPrefix: options.keyPrefix,
    counters,
    backend: () => (domains.anyOpen ? "local_degraded" : "redis"),
    localEntries: options.fallback.size,
    near: { tracking: options.tracking, refill }
  })
}
