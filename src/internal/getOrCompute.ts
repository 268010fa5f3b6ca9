/**
 * `getOrCompute`, every form of it (docs/stampedes.md): one computation per key in this process, and with `lock` one
 * across every node; stale values served only when the caller asked for them (`staleWhileRevalidate`,
 * `staleIfError`) and marked `stale`; a failure of `compute` never cached. Every read goes through the keyspace's
 * read pipeline (near → store → fill, `@effect-failclosed/core`), so each form reads and fills the near cache, and
 * every write goes through it as an own write. Entries written with a stale window are sealed with their freshness
 * (the envelope is described in the core's `readPipeline.ts`).
 */
import * as crypto from "node:crypto"
import type * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as Metric from "effect/Metric"
import * as MetricKey from "effect/MetricKey"
import {
  type Found,
  isRead,
  LOCK_SUFFIX,
  type Now,
  type Pending,
  type Read,
  type ReadPipeline,
  seal
} from "@effect-failclosed/core"
import type { Backend, Cached, CacheModeName, DistributedCacheService } from "../DistributedCache.js"
import { type CacheBackendUnavailable, CacheValueInvalid } from "../errors.js"
import type { GetOrComputeOptions } from "../Keyspace.js"
import { cachedOf, makeCached } from "./cached.js"
import { failedIn, increment, perMode } from "./observability.js"
import { durationMillis } from "./options.js"
import { readEntry, roundTrip, writeThrough } from "./readThrough.js"

// --- options ---------------------------------------------------------------------------------------------------------

/** the options of one getOrCompute call, checked: every form is one of these @internal */
export interface Stampede {
  readonly lock: boolean
  readonly lockTimeoutMillis: number
  /** 0: off */
  readonly revalidateMillis: number
  /** 0: off */
  readonly ifErrorMillis: number
  readonly computeTimeoutMillis: number | undefined
  /** a stale window is asked for: reads accept values past their freshness (served only within the window) */
  readonly acceptsStale: boolean
  /** `refreshAhead`: the fraction of the time to live past which a hit starts a background refresh (0: off) */
  readonly refreshAhead: number
}

/** the default `lockTimeout` @internal */
export const DEFAULT_LOCK_TIMEOUT_MILLIS = 5_000

/** the plain form: no lock, no stale window (one computation per key per process, no stale value ever) @internal */
export const PLAIN: Stampede = {
  lock: false,
  lockTimeoutMillis: DEFAULT_LOCK_TIMEOUT_MILLIS,
  revalidateMillis: 0,
  ifErrorMillis: 0,
  computeTimeoutMillis: undefined,
  acceptsStale: false,
  refreshAhead: 0
}

/**
 * The options of one call, checked: {@link PLAIN} when none of `lock`, `staleWhileRevalidate`, `staleIfError` is set
 * (the others matter only with them), else their milliseconds, or the reason one is invalid.
 * @internal
 */
export const stampedeOf = (options: GetOrComputeOptions<never> | undefined): Stampede | string => {
  if (options === undefined) return PLAIN
  const refreshAhead = options.refreshAhead
  if (refreshAhead !== undefined && (typeof refreshAhead !== "number" || !(refreshAhead > 0) || !(refreshAhead < 1))) {
    return "refreshAhead must be a number between 0 and 1 (a fraction of the time to live)"
  }
  if (options.lock !== true && options.staleWhileRevalidate === undefined && options.staleIfError === undefined) {
    return refreshAhead === undefined ? PLAIN : { ...PLAIN, refreshAhead }
  }
  const lockTimeoutMillis =
    options.lockTimeout === undefined
      ? DEFAULT_LOCK_TIMEOUT_MILLIS
      : durationMillis("lockTimeout", options.lockTimeout, "window")
  if (typeof lockTimeoutMillis === "string") return lockTimeoutMillis
  const revalidateMillis =
    options.staleWhileRevalidate === undefined
      ? 0
      : durationMillis("staleWhileRevalidate", options.staleWhileRevalidate, "window")
  if (typeof revalidateMillis === "string") return revalidateMillis
  const ifErrorMillis =
    options.staleIfError === undefined ? 0 : durationMillis("staleIfError", options.staleIfError, "window")
  if (typeof ifErrorMillis === "string") return ifErrorMillis
  const computeTimeoutMillis =
    options.computeTimeout === undefined
      ? undefined
      : durationMillis("computeTimeout", options.computeTimeout, "timeout")
  if (typeof computeTimeoutMillis === "string") return computeTimeoutMillis
  return {
    lock: options.lock === true,
    lockTimeoutMillis,
    revalidateMillis,
    ifErrorMillis,
    computeTimeoutMillis,
    acceptsStale: revalidateMillis > 0 || ifErrorMillis > 0,
    refreshAhead: refreshAhead ?? 0
  }
}

// --- metrics ---------------------------------------------------------------------------------------------------------

const counterKey = (name: string, description: string) => MetricKey.counter(name, { description, incremental: true })

/** @internal */
export const COMPUTES = counterKey("effect_failclosed_computes", "getOrCompute computations run on this node")
/** @internal */
export const LOCK_WAITS = counterKey(
  "effect_failclosed_lock_waits",
  "getOrCompute misses that found the key's lock held by another node and waited for its value"
)
/** @internal */
export const LOCK_TAKEOVERS = counterKey(
  "effect_failclosed_lock_takeovers",
  "Waiters that took the lock after its holder released it without a value (failed) or it expired (holder died or slow)"
)
/** @internal */
export const LOCK_TIMEOUTS = counterKey(
  "effect_failclosed_lock_timeouts",
  "Waiters that stopped waiting after lockTimeout and computed without the lock"
)
/** @internal */
export const STALE_SERVED = counterKey(
  "effect_failclosed_stale_served",
  "Values past their time to live served because the caller asked for it, by reason (revalidate, error)"
)

const tagged = (key: MetricKey.MetricKey.Counter<number>, tags: ReadonlyArray<readonly [string, string]>) =>
  tags.reduce((metric, [k, v]) => Metric.tagged(metric, k, v), Metric.fromMetricKey(key))

const stampedeMetrics = (keyspace: string) =>
  perMode((mode: CacheModeName) => {
    const tags = [
      ["mode", mode],
      ["keyspace", keyspace]
    ] as const
    return {
      computes: tagged(COMPUTES, tags),
      lockWaits: tagged(LOCK_WAITS, tags),
      lockTakeovers: tagged(LOCK_TAKEOVERS, tags),
      lockTimeouts: tagged(LOCK_TIMEOUTS, tags),
      staleRevalidate: tagged(STALE_SERVED, [...tags, ["reason", "revalidate"]]),
      staleError: tagged(STALE_SERVED, [...tags, ["reason", "error"]])
    }
  })

/**
 * One value per cache (one Layer instance), made on first use: two caches never share a computation, each stores and
 * marks its own result.
 * @internal
 */
export const perCache = <A extends object>(make: () => A): ((cache: DistributedCacheService) => A) => {
  const byCache = new WeakMap<DistributedCacheService, A>()
  return (cache) => {
    let a = byCache.get(cache)
    if (a === undefined) {
      a = make()
      byCache.set(cache, a)
    }
    return a
  }
}

// --- single flight ---------------------------------------------------------------------------------------------------

/**
 * Runs `work` once per key in this process: a caller that finds it in progress waits for its outcome. The work runs
 * in a daemon fiber, so a caller's interruption does not cancel it for the others.
 * @internal
 */
export const singleFlight = <A, E, R>(
  inflight: Map<string, Deferred.Deferred<A, unknown>>,
  key: string,
  work: Effect.Effect<A, E, R>
): Effect.Effect<A, E, R> =>
  Effect.suspend(() => {
    const running = inflight.get(key) as Deferred.Deferred<A, E> | undefined
    if (running !== undefined) return Deferred.await(running)
    const deferred = Deferred.unsafeMake<A, E>(FiberId.none)
    inflight.set(key, deferred as Deferred.Deferred<A, unknown>)
    return work.pipe(
      Effect.exit,
      Effect.flatMap((exit) => Deferred.done(deferred, exit)),
      Effect.ensuring(Effect.sync(() => inflight.delete(key))),
      Effect.forkDaemon,
      Effect.zipRight(Deferred.await(deferred))
    )
  })

// --- getOrCompute ----------------------------------------------------------------------------------------------------

/**
 * What the computed value decides of its own entry (adaptive time to live and tags): its time to live (or why it is
 * invalid), and the tag marks it is stored under (an Effect: a tag's stamp may have to be read or created).
 * @internal
 */
export interface Adaptive<V> {
  readonly ttlOf: ((value: V) => number | undefined | CacheValueInvalid) | undefined
  readonly tagsOf:
    | ((
        value: V
      ) => Effect.Effect<((stored: string) => string) | undefined, CacheBackendUnavailable | CacheValueInvalid>)
    | undefined
}

/** what a keyspace gives getOrCompute @internal */
export interface Entries<V, M> {
  readonly keyspace: string
  readonly encode: (value: V) => Either.Either<string, CacheValueInvalid>
  /** the keyspace's read pipeline on a cache (LocalOnly memory, or its near cache in front of Redis) */
  readonly pipelineOf: (cache: DistributedCacheService) => ReadPipeline<V, M>
}

/** waiters poll the entry and the lock, from this interval doubling up to the next */
const FIRST_POLL_MILLIS = 5
const MAX_POLL_MILLIS = 100

class ComputeTimedOut {
  readonly _tag = "ComputeTimedOut"
  toString() {
    return "compute ran past computeTimeout and was interrupted"
  }
}
const TIMED_OUT = new ComputeTimedOut()

const inGetOrCompute = failedIn("getOrCompute")
/** a tag's stamp read or created for getOrCompute: a failure names getOrCompute; an input error stays as it is */
const inGetOrComputeInput = (e: CacheBackendUnavailable | CacheValueInvalid) =>
  e._tag === "CacheBackendUnavailable" ? inGetOrCompute(e) : e

/** a value past its freshness, found by a caller that asked for stale values */
type Stale<V, M> = Found<V, M> & { readonly stale: true; readonly freshUntil: number; readonly writtenAt: number }
/** the marks of the read a computed value answers (what a value `shouldCache` declined is marked with) */
interface Marks {
  readonly backend: Backend
  readonly degraded: boolean
}

/** a value within its freshness (not a type guard: its false branch holds stale values too) */
const isFresh = <V, M>(read: Read<V, M>): boolean => read._tag === "Found" && !read.stale
const staleOf = <V, M>(read: Read<V, M>): Stale<V, M> | undefined =>
  read._tag === "Found" && read.stale ? (read as Stale<V, M>) : undefined

/**
 * getOrCompute after its first lookup (a miss, a stale value, or a round trip to make: the keyspace answers a fresh
 * local or near hit itself, without coming here).
 * @internal
 */
export const makeGetOrCompute = <V, M>(entries: Entries<V, M>) => {
  const { encode, keyspace, pipelineOf } = entries
  const metricsOf = stampedeMetrics(keyspace)
  /**
   * single flight: one computation per cache and store key in this process (two caches, e.g. two Layers with the
   * same key prefix, never share a computation: each stores and marks its own result)
   */
  const inflightOf = perCache(() => new Map<string, Deferred.Deferred<Cached<V>, unknown>>())
  /** every getOrCompute refresh in progress in this process, by cache and store key */
  const refreshingOf = perCache(() => new Set<string>())

  /** a stale value as served: marked `stale`, with its age at `now` */
  const servedStale = (read: Stale<V, M>, now: number): Cached<V> =>
    makeCached(read.value, read.backend, read.near, true, Duration.millis(Math.max(0, now - read.writtenAt)))

  return <E, R>(
    cache: DistributedCacheService,
    storeKey: string,
    ttl: number | undefined,
    compute: Effect.Effect<V, E, R>,
    shouldCache: ((value: V) => boolean) | undefined,
    s: Stampede,
    first: Read<V, M> | Pending,
    now: Now,
    counted: (hit: boolean) => void,
    adaptive?: Adaptive<V>
  ): Effect.Effect<Cached<V>, E | CacheBackendUnavailable | CacheValueInvalid, R> => {
    type Failure = E | CacheBackendUnavailable | CacheValueInvalid
    const metrics = metricsOf(cache.mode)
    const pipeline = pipelineOf(cache)
    // entries are sealed only when they can go stale (a finite time to live and a stale window asked for), or when
    // refreshAhead needs their age
    const keepMillis = Math.max(s.revalidateMillis, s.ifErrorMillis)
    const sealedWith = (ttlMillis: number | undefined) =>
      ttlMillis !== undefined && (keepMillis > 0 || s.refreshAhead > 0)
    const stale = s.acceptsStale
    /** a fresh value old enough for refreshAhead: answered, and refreshed in the background */
    const due = (read: Read<V, M>): boolean => {
      if (s.refreshAhead <= 0 || read._tag !== "Found" || read.stale) return false
      const { freshUntil, writtenAt } = read
      if (writtenAt === undefined || freshUntil === undefined) return false
      return now() >= writtenAt + s.refreshAhead * (freshUntil - writtenAt)
    }

    /** a read again (the pipeline: near, then the store) */
    const read: Effect.Effect<Read<V, M>, CacheBackendUnavailable> = Effect.mapError(
      readEntry(pipeline, cache, storeKey, stale),
      inGetOrCompute
    )

    /** stores a computed value (unless `shouldCache` declines it), sealed when it may go stale, kept near */
    const store = (value: V, miss: Marks): Effect.Effect<Cached<V>, CacheBackendUnavailable | CacheValueInvalid> => {
      if (shouldCache !== undefined && !shouldCache(value)) {
        return Effect.succeed(makeCached(value, miss.backend, false, false, undefined))
      }
      const json = encode(value)
      if (Either.isLeft(json)) return Effect.fail(json.left)
      const ttlOfValue = adaptive?.ttlOf === undefined ? ttl : adaptive.ttlOf(value)
      if (ttlOfValue instanceof CacheValueInvalid) return Effect.fail(ttlOfValue)
      const tagged = adaptive?.tagsOf === undefined ? undefined : adaptive.tagsOf(value)
      if (tagged === undefined) return storeJson(value, json.right, ttlOfValue, undefined)
      return Effect.flatMap(Effect.mapError(tagged, inGetOrComputeInput), (wrap) =>
        storeJson(value, json.right, ttlOfValue, wrap)
      )
    }
    const storeJson = (
      value: V,
      json: string,
      ttl: number | undefined,
      wrap: ((stored: string) => string) | undefined
    ): Effect.Effect<Cached<V>, CacheBackendUnavailable | CacheValueInvalid> => {
      const write = (sealedJson: string, ttlMillis: number | undefined, age: Duration.Duration | undefined) => {
        const stored = wrap === undefined ? sealedJson : wrap(sealedJson)
        return Effect.map(
          Effect.mapError(
            Effect.suspend(() =>
              writeThrough(pipeline, storeKey, stored, ttlMillis, cache.set(storeKey, stored, ttlMillis), inRedis)
            ),
            inGetOrCompute
          ),
          (written) => makeCached(value, written.backend, false, false, age)
        )
      }
      if (!sealedWith(ttl)) return write(json, ttl, undefined)
      return Effect.flatMap(Clock.currentTimeMillis, (at) =>
        write(seal(json, at, ttl!), ttl! + keepMillis, Duration.zero)
      )
    }

    /**
     * computes and stores; a failure of `compute` (or its timeout, with `computeTimeout`) serves `fallback` while it
     * is within staleIfError, logging the failure. A store failure is never answered with a stale value.
     */
    const computeAndStore = (miss: Marks, fallback: Stale<V, M> | undefined): Effect.Effect<Cached<V>, Failure, R> => {
      increment(metrics.computes)
      const usable = fallback !== undefined && s.ifErrorMillis > 0 ? fallback : undefined
      if (usable === undefined) return Effect.flatMap(compute, (value) => store(value, miss))
      const limit = usable.freshUntil + s.ifErrorMillis
      const timeout = s.computeTimeoutMillis
      // past computeTimeout: interrupted and answered with the stale value while it is within staleIfError; once
      // that ended, the call waits for the computation (no timeout error is made up)
      const bounded: Effect.Effect<V, E | ComputeTimedOut, R> =
        timeout === undefined
          ? compute
          : Effect.flatMap(Effect.fork(compute), (fiber) =>
              Effect.catchIf(
                Effect.timeoutFail(Fiber.join(fiber), {
                  duration: Duration.millis(timeout),
                  onTimeout: () => TIMED_OUT
                }),
                (e): e is ComputeTimedOut => e === TIMED_OUT,
                (): Effect.Effect<V, E | ComputeTimedOut> =>
                  Effect.flatMap(Clock.currentTimeMillis, (at): Effect.Effect<V, E | ComputeTimedOut> =>
                    at < limit ? Effect.zipRight(Fiber.interruptFork(fiber), Effect.fail(TIMED_OUT)) : Fiber.join(fiber)
                  )
              )
            )
      return Effect.matchCauseEffect(bounded, {
        onSuccess: (value) => store(value, miss),
        onFailure: (cause) =>
          Effect.flatMap(Clock.currentTimeMillis, (at) => {
            const failure = cause._tag === "Fail" ? cause.error : undefined
            if (failure === undefined || (at >= limit && failure !== TIMED_OUT)) {
              return Effect.failCause(cause as Cause.Cause<E>)
            }
            increment(metrics.staleError)
            return Effect.as(
              Effect.logWarning(
                "effect-failclosed: getOrCompute's compute failed; the stale value is served (staleIfError)",
                cause
              ).pipe(Effect.annotateLogs("keyspace", keyspace)),
              servedStale(usable, at)
            )
          })
      })
    }

    /** a read again: fresh, or computed (with the stale value read, else `fallback`, for staleIfError) */
    const freshOrCompute = (again: Read<V, M>, fallback: Stale<V, M> | undefined) =>
      isFresh(again)
        ? Effect.succeed(cachedOf(again as Found<V, M>))
        : computeAndStore(again, staleOf(again) ?? fallback)

    const lockKey = storeKey + LOCK_SUFFIX
    const acquire = (token: string) =>
      Effect.map(
        Effect.mapError(cache.acquireLock(lockKey, token, s.lockTimeoutMillis), inGetOrCompute),
        (taken) => taken.value
      )
    const release = (token: string) => Effect.ignore(cache.releaseLock(lockKey, token))

    /** holding the lock: reads again (the previous holder may have stored the value), computes on a miss */
    const holding = (token: string, fallback: Stale<V, M> | undefined): Effect.Effect<Cached<V>, Failure, R> =>
      Effect.ensuring(
        Effect.flatMap(read, (again) => freshOrCompute(again, fallback)),
        release(token)
      )

    /** another node holds the lock: poll the entry, take the lock when it is free, give up after lockTimeout */
    const waitFor = (
      token: string,
      fallback: Stale<V, M> | undefined,
      deadline: number
    ): Effect.Effect<Cached<V>, Failure, R> => {
      increment(metrics.lockWaits)
      const poll = (delay: number, at: number): Effect.Effect<Cached<V>, Failure, R> =>
        Effect.zipRight(
          Effect.sleep(Duration.millis(Math.max(0, Math.min(delay, deadline - at)))),
          Effect.flatMap(Effect.zip(read, Clock.currentTimeMillis), ([again, at]) => {
            if (isFresh(again)) return Effect.succeed(cachedOf(again as Found<V, M>))
            const stale = staleOf(again) ?? fallback
            return Effect.flatMap(acquire(token), (taken) => {
              if (taken) {
                increment(metrics.lockTakeovers)
                return holding(token, stale)
              }
              if (at >= deadline) {
                increment(metrics.lockTimeouts)
                return computeAndStore(again, stale)
              }
              return poll(Math.min(delay * 2, MAX_POLL_MILLIS), at)
            })
          })
        )
      return Effect.flatMap(Clock.currentTimeMillis, (at) => poll(FIRST_POLL_MILLIS, at))
    }

    /** the leader of this process: with `lock`, the lock's holder or a waiter; else it reads again and computes */
    const lead = (fallback: Stale<V, M> | undefined): Effect.Effect<Cached<V>, Failure, R> => {
      if (!s.lock) return Effect.flatMap(read, (again) => freshOrCompute(again, fallback))
      const token = crypto.randomUUID()
      return Effect.flatMap(acquire(token), (taken) =>
        taken
          ? holding(token, fallback)
          : Effect.flatMap(Clock.currentTimeMillis, (at) => waitFor(token, fallback, at + s.lockTimeoutMillis))
      )
    }

    /** one background refresh per key in this process (and, with `lock`, across nodes): failures are logged */
    const revalidate = (): Effect.Effect<void, never, R> =>
      Effect.suspend(() => {
        const refreshing = refreshingOf(cache)
        if (refreshing.has(storeKey)) return Effect.void
        refreshing.add(storeKey)
        const token = s.lock ? crypto.randomUUID() : ""
        const once: Effect.Effect<unknown, Failure, R> = Effect.flatMap(read, (again) =>
          isFresh(again) && !due(again) ? Effect.void : computeAndStore(again, undefined)
        )
        const work: Effect.Effect<unknown, Failure, R> = s.lock
          ? Effect.flatMap(acquire(token), (taken) => (taken ? Effect.ensuring(once, release(token)) : Effect.void))
          : once
        return work.pipe(
          Effect.catchAllCause((cause) =>
            Effect.logWarning(
              "effect-failclosed: getOrCompute's background refresh failed; the value stays (staleWhileRevalidate, refreshAhead)",
              cause
            ).pipe(Effect.annotateLogs("keyspace", keyspace))
          ),
          Effect.ensuring(Effect.sync(() => refreshing.delete(storeKey))),
          Effect.forkDaemon,
          Effect.asVoid
        )
      })

    const decide = (found: Read<V, M>): Effect.Effect<Cached<V>, Failure, R> => {
      if (isFresh(found)) {
        counted(true)
        if (due(found)) return Effect.as(revalidate(), cachedOf(found as Found<V, M>))
        return Effect.succeed(cachedOf(found as Found<V, M>))
      }
      counted(false)
      const stale = staleOf(found)
      if (stale !== undefined && s.revalidateMillis > 0) {
        const at = now()
        if (at < stale.freshUntil + s.revalidateMillis) {
          increment(metrics.staleRevalidate)
          return Effect.as(revalidate(), servedStale(stale, at))
        }
      }
      return singleFlight(inflightOf(cache), storeKey, lead(stale))
    }

    if (isRead(first)) return decide(first)
    return Effect.flatMap(
      Effect.mapError(roundTrip(pipeline, cache, storeKey, first, now, stale), inGetOrCompute),
      decide
    )
  }
}

const inRedis = (written: Cached<void>) => written.backend === "redis"
