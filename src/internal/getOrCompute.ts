/**
 * `getOrCompute` under pressure (docs/stampedes.md): one computation per key across every node (`lock`), stale values
 * served only when the caller asked for them (`staleWhileRevalidate`, `staleIfError`) and marked `stale`.
 *
 * Freshness lives in the entry: an entry written with a stale window is sealed in a small envelope,
 * `~1:<writtenAt>:<freshUntil>:<json>` (epoch milliseconds of the writer's clock), and kept in the store for its time
 * to live plus the longest stale window. `~` cannot start JSON, so a reader tells the two kinds apart by one
 * character and plain entries are read exactly as before. A reader that did not ask for stale values treats a sealed
 * entry past `freshUntil` as a miss.
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
import { LOCK_SUFFIX } from "@effect-failclosed/core"
import type { Backend, Cached, CacheModeName, DistributedCacheService } from "../DistributedCache.js"
import type { CacheBackendUnavailable, CacheEntryInvalid, CacheValueInvalid } from "../errors.js"
import { failedIn, increment, perMode } from "./observability.js"
import { durationMillis } from "./options.js"

// --- the envelope ----------------------------------------------------------------------------------------------------

const MARK = 126 // "~"
const HEAD = "~1:"

/** true when a stored entry is sealed in an envelope (see the module doc) @internal */
export const isSealed = (raw: string): boolean => raw.charCodeAt(0) === MARK

/** @internal */
export interface Envelope {
  readonly writtenAt: number
  readonly freshUntil: number
  readonly json: string
}

/** the envelope of a sealed entry, or undefined when it is not one (a corrupt entry) @internal */
export const unseal = (raw: string): Envelope | undefined => {
  if (!raw.startsWith(HEAD)) return undefined
  const a = raw.indexOf(":", HEAD.length)
  const b = a < 0 ? -1 : raw.indexOf(":", a + 1)
  if (b < 0) return undefined
  const writtenAt = Number(raw.slice(HEAD.length, a))
  const freshUntil = Number(raw.slice(a + 1, b))
  if (!Number.isSafeInteger(writtenAt) || !Number.isSafeInteger(freshUntil)) return undefined
  return { writtenAt, freshUntil, json: raw.slice(b + 1) }
}

const seal = (json: string, writtenAt: number, ttlMillis: number): string =>
  `${HEAD}${writtenAt}:${writtenAt + ttlMillis}:${json}`

/** the age of a sealed entry at `now`: never negative, whatever the skew between the writer's clock and ours */
const ageAt = (envelope: Envelope, now: number): Duration.Duration =>
  Duration.millis(Math.max(0, now - envelope.writtenAt))

// --- reads -----------------------------------------------------------------------------------------------------------

/**
 * An entry as a reader at one instant sees it: fresh (a hit), stale (past its time to live, still stored: served only
 * to a caller that asked for it) or a miss (none, or corrupt).
 * @internal
 */
export type Read<V> =
  | { readonly _tag: "Fresh"; readonly cached: Cached<V> }
  | {
      readonly _tag: "Stale"
      readonly value: V
      readonly envelope: Envelope
      readonly backend: Backend
      readonly degraded: boolean
    }
  | { readonly _tag: "Miss"; readonly backend: Backend; readonly degraded: boolean }

/** a sealed entry within its time to live, with its age @internal */
export const freshOf = <V>(
  entry: Cached<string | undefined>,
  value: V,
  envelope: Envelope,
  now: number
): Cached<V> => ({
  value,
  backend: entry.backend,
  degraded: entry.degraded,
  near: false,
  stale: false,
  age: ageAt(envelope, now)
})

/** reads a raw entry at `now` with the keyspace's decoder @internal */
export const readAt = <V>(
  decode: (json: string) => Either.Either<V, CacheEntryInvalid>,
  entry: Cached<string | undefined>,
  now: number
): Read<V> => {
  const raw = entry.value
  if (raw !== undefined) {
    const envelope = isSealed(raw) ? unseal(raw) : undefined
    const decoded = decode(envelope === undefined ? raw : envelope.json)
    // a sealed entry whose envelope is corrupt does not decode either: `~` cannot start JSON
    if (Either.isRight(decoded)) {
      if (envelope === undefined) {
        return {
          _tag: "Fresh",
          cached: { value: decoded.right, backend: entry.backend, degraded: entry.degraded, near: false, stale: false }
        }
      }
      if (now < envelope.freshUntil) return { _tag: "Fresh", cached: freshOf(entry, decoded.right, envelope, now) }
      return { _tag: "Stale", value: decoded.right, envelope, backend: entry.backend, degraded: entry.degraded }
    }
  }
  return { _tag: "Miss", backend: entry.backend, degraded: entry.degraded }
}

// --- options ---------------------------------------------------------------------------------------------------------

/** the stampede options of getOrCompute (the public type is Keyspace.GetOrComputeOptions) @internal */
export interface StampedeOptions {
  readonly lock?: boolean | undefined
  readonly lockTimeout?: Duration.DurationInput | undefined
  readonly staleWhileRevalidate?: Duration.DurationInput | undefined
  readonly staleIfError?: Duration.DurationInput | undefined
  readonly computeTimeout?: Duration.DurationInput | undefined
}

/** @internal */
export interface Stampede {
  readonly lock: boolean
  readonly lockTimeoutMillis: number
  /** 0: off */
  readonly revalidateMillis: number
  /** 0: off */
  readonly ifErrorMillis: number
  readonly computeTimeoutMillis: number | undefined
}

/** the default `lockTimeout` @internal */
export const DEFAULT_LOCK_TIMEOUT_MILLIS = 5_000

/**
 * The stampede options of one call: undefined when none is set (the plain path, unchanged), else their milliseconds
 * or the reason one is invalid.
 * @internal
 */
export const stampedeOf = (options: StampedeOptions | undefined): Stampede | string | undefined => {
  if (
    options === undefined ||
    (options.lock !== true && options.staleWhileRevalidate === undefined && options.staleIfError === undefined)
  ) {
    return undefined
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
  return { lock: options.lock === true, lockTimeoutMillis, revalidateMillis, ifErrorMillis, computeTimeoutMillis }
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

// --- getOrCompute with stampede options ------------------------------------------------------------------------------

/** what a keyspace gives the stampede path @internal */
export interface Entries<V> {
  readonly keyspace: string
  readonly decode: (json: string) => Either.Either<V, CacheEntryInvalid>
  readonly encode: (value: V) => Either.Either<string, CacheValueInvalid>
  readonly inflightOf: (cache: DistributedCacheService) => Map<string, Deferred.Deferred<Cached<V>, unknown>>
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

/** @internal */
export const makeStampede = <V>(entries: Entries<V>) => {
  const { decode, encode, keyspace } = entries
  const metricsOf = stampedeMetrics(keyspace)
  /** every getOrCompute refresh in progress in this process, by cache and store key */
  const refreshingOf = perCache(() => new Set<string>())

  const staleOf = (read: Read<V> & { readonly _tag: "Stale" }, now: number): Cached<V> => ({
    value: read.value,
    backend: read.backend,
    degraded: read.degraded,
    near: false,
    stale: true,
    age: ageAt(read.envelope, now)
  })

  return <E, R>(
    cache: DistributedCacheService,
    storeKey: string,
    ttl: number | undefined,
    compute: Effect.Effect<V, E, R>,
    shouldCache: ((value: V) => boolean) | undefined,
    s: Stampede,
    counted: (hit: boolean) => void
  ): Effect.Effect<Cached<V>, E | CacheBackendUnavailable | CacheValueInvalid, R> => {
    type Failure = E | CacheBackendUnavailable | CacheValueInvalid
    const metrics = metricsOf(cache.mode)
    // entries are sealed only when they can go stale: a finite time to live and a stale window asked for
    const keepMillis = Math.max(s.revalidateMillis, s.ifErrorMillis)
    const sealed = ttl !== undefined && keepMillis > 0

    const read: Effect.Effect<readonly [Read<V>, number], CacheBackendUnavailable> = Effect.zipWith(
      Effect.mapError(cache.get(storeKey), inGetOrCompute),
      Clock.currentTimeMillis,
      (entry, now) => [readAt(decode, entry, now), now] as const
    )

    /** stores a computed value (unless `shouldCache` declines it), sealed when it may go stale */
    const store = (
      value: V,
      miss: { readonly backend: Backend; readonly degraded: boolean }
    ): Effect.Effect<Cached<V>, CacheBackendUnavailable | CacheValueInvalid> => {
      if (shouldCache !== undefined && !shouldCache(value)) {
        return Effect.succeed<Cached<V>>({
          value,
          backend: miss.backend,
          degraded: miss.degraded,
          near: false,
          stale: false
        })
      }
      const json = encode(value)
      if (Either.isLeft(json)) return Effect.fail(json.left)
      if (!sealed) {
        return Effect.map(
          Effect.mapError(cache.set(storeKey, json.right, ttl), inGetOrCompute),
          (written): Cached<V> => ({
            value,
            backend: written.backend,
            degraded: written.degraded,
            near: false,
            stale: false
          })
        )
      }
      return Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Effect.map(
          Effect.mapError(cache.set(storeKey, seal(json.right, now, ttl), ttl + keepMillis), inGetOrCompute),
          (written): Cached<V> => ({
            value,
            backend: written.backend,
            degraded: written.degraded,
            near: false,
            stale: false,
            age: Duration.zero
          })
        )
      )
    }

    /**
     * computes and stores; a failure of `compute` (or its timeout, with `computeTimeout`) serves `fallback` while it
     * is within staleIfError, logging the failure. A store failure is never answered with a stale value.
     */
    const computeAndStore = (
      miss: { readonly backend: Backend; readonly degraded: boolean },
      fallback: (Read<V> & { readonly _tag: "Stale" }) | undefined
    ): Effect.Effect<Cached<V>, Failure, R> => {
      increment(metrics.computes)
      const usable = fallback !== undefined && s.ifErrorMillis > 0 ? fallback : undefined
      if (usable === undefined) return Effect.flatMap(compute, (value) => store(value, miss))
      const limit = usable.envelope.freshUntil + s.ifErrorMillis
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
                  Effect.flatMap(Clock.currentTimeMillis, (now): Effect.Effect<V, E | ComputeTimedOut> =>
                    now < limit
                      ? Effect.zipRight(Fiber.interruptFork(fiber), Effect.fail(TIMED_OUT))
                      : Fiber.join(fiber)
                  )
              )
            )
      return Effect.matchCauseEffect(bounded, {
        onSuccess: (value) => store(value, miss),
        onFailure: (cause) =>
          Effect.flatMap(Clock.currentTimeMillis, (now) => {
            const failure = cause._tag === "Fail" ? cause.error : undefined
            if (failure === undefined || (now >= limit && failure !== TIMED_OUT)) {
              return Effect.failCause(cause as Cause.Cause<E>)
            }
            increment(metrics.staleError)
            return Effect.as(
              Effect.logWarning(
                "effect-failclosed: getOrCompute's compute failed; the stale value is served (staleIfError)",
                cause
              ).pipe(Effect.annotateLogs("keyspace", keyspace)),
              staleOf(usable, now)
            )
          })
      })
    }

    const lockKey = storeKey + LOCK_SUFFIX
    const acquire = (token: string) =>
      Effect.map(
        Effect.mapError(cache.acquireLock(lockKey, token, s.lockTimeoutMillis), inGetOrCompute),
        (taken) => taken.value
      )
    const release = (token: string) => Effect.ignore(cache.releaseLock(lockKey, token))

    /** holding the lock: reads again (the previous holder may have stored the value), computes on a miss */
    const holding = (
      token: string,
      fallback: (Read<V> & { readonly _tag: "Stale" }) | undefined
    ): Effect.Effect<Cached<V>, Failure, R> =>
      Effect.ensuring(
        Effect.flatMap(read, ([again]) =>
          again._tag === "Fresh"
            ? Effect.succeed(again.cached)
            : computeAndStore(again, again._tag === "Stale" ? again : fallback)
        ),
        release(token)
      )

    /** another node holds the lock: poll the entry, take the lock when it is free, give up after lockTimeout */
    const waitFor = (
      token: string,
      fallback: (Read<V> & { readonly _tag: "Stale" }) | undefined,
      deadline: number
    ): Effect.Effect<Cached<V>, Failure, R> => {
      increment(metrics.lockWaits)
      const poll = (delay: number, now: number): Effect.Effect<Cached<V>, Failure, R> =>
        Effect.zipRight(
          Effect.sleep(Duration.millis(Math.max(0, Math.min(delay, deadline - now)))),
          Effect.flatMap(read, ([again, at]) => {
            if (again._tag === "Fresh") return Effect.succeed(again.cached)
            const stale = again._tag === "Stale" ? again : fallback
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
      return Effect.flatMap(Clock.currentTimeMillis, (now) => poll(FIRST_POLL_MILLIS, now))
    }

    /** the leader of this process: with `lock`, the lock's holder or a waiter; else it reads again and computes */
    const lead = (first: Read<V> & { readonly _tag: "Stale" | "Miss" }): Effect.Effect<Cached<V>, Failure, R> => {
      const fallback = first._tag === "Stale" ? first : undefined
      if (!s.lock) {
        return Effect.flatMap(read, ([again]) =>
          again._tag === "Fresh"
            ? Effect.succeed(again.cached)
            : computeAndStore(again, again._tag === "Stale" ? again : fallback)
        )
      }
      const token = crypto.randomUUID()
      return Effect.flatMap(acquire(token), (taken) =>
        taken
          ? holding(token, fallback)
          : Effect.flatMap(Clock.currentTimeMillis, (now) => waitFor(token, fallback, now + s.lockTimeoutMillis))
      )
    }

    /** one background refresh per key in this process (and, with `lock`, across nodes): failures are logged */
    const revalidate = (): Effect.Effect<void, never, R> =>
      Effect.suspend(() => {
        const refreshing = refreshingOf(cache)
        if (refreshing.has(storeKey)) return Effect.void
        refreshing.add(storeKey)
        const token = s.lock ? crypto.randomUUID() : ""
        const once: Effect.Effect<unknown, Failure, R> = Effect.flatMap(read, ([again]) =>
          again._tag === "Fresh" ? Effect.void : computeAndStore(again, undefined)
        )
        const work: Effect.Effect<unknown, Failure, R> = s.lock
          ? Effect.flatMap(acquire(token), (taken) => (taken ? Effect.ensuring(once, release(token)) : Effect.void))
          : once
        return work.pipe(
          Effect.catchAllCause((cause) =>
            Effect.logWarning(
              "effect-failclosed: getOrCompute's background refresh failed; the stale value stays (staleWhileRevalidate)",
              cause
            ).pipe(Effect.annotateLogs("keyspace", keyspace))
          ),
          Effect.ensuring(Effect.sync(() => refreshing.delete(storeKey))),
          Effect.forkDaemon,
          Effect.asVoid
        )
      })

    return Effect.flatMap(read, ([first, now]) => {
      if (first._tag === "Fresh") {
        counted(true)
        return Effect.succeed(first.cached)
      }
      counted(false)
      if (first._tag === "Stale" && s.revalidateMillis > 0 && now < first.envelope.freshUntil + s.revalidateMillis) {
        increment(metrics.staleRevalidate)
        return Effect.as(revalidate(), staleOf(first, now))
      }
      return singleFlight(entries.inflightOf(cache), storeKey, lead(first))
    })
  }
}
