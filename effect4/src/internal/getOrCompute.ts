/**
 * `getOrCompute` for Effect 4, every form: one computation per key in this process; with `lock`, one across every
 * node of either Effect line (the lock is the core's key, `<entry key>~lock`, set with NX by the core's store, released
 * by the core's script, so an Effect 3 node and an Effect 4 node wait for each other); with `staleWhileRevalidate` /
 * `staleIfError`, entries sealed with their freshness (the core's envelope, the format Effect 3 nodes write and read)
 * and stale values served only when asked for, marked `stale`. Every read goes through the core's read pipeline.
 *
 * Written in each line: the fibers, timeouts and daemon refreshes are Effect code (Effect 3's `Effect.async` world
 * and Effect 4's `Effect.callback` one do not mix); the mechanism under it (locks, envelope, pipeline) is the core's.
 */
import * as crypto from "node:crypto"
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import { LOCK_SUFFIX, type Read, seal } from "@effect-failclosed/core"
import type { Backend, Cached, DistributedCacheService } from "../DistributedCache.js"
import type { CacheBackendUnavailable, CacheValueInvalid } from "../errors.js"
import type { GetOrComputeOptions } from "../Keyspace.js"
import { durationMillis } from "./options.js"

/** the options of one call, checked @internal */
export interface Stampede {
  readonly lock: boolean
  readonly lockTimeoutMillis: number
  readonly revalidateMillis: number
  readonly ifErrorMillis: number
  readonly computeTimeoutMillis: number | undefined
  readonly acceptsStale: boolean
}

const DEFAULT_LOCK_TIMEOUT_MILLIS = 5_000
const FIRST_POLL_MILLIS = 5
const MAX_POLL_MILLIS = 100

/** @internal */
export const PLAIN: Stampede = {
  lock: false,
  lockTimeoutMillis: DEFAULT_LOCK_TIMEOUT_MILLIS,
  revalidateMillis: 0,
  ifErrorMillis: 0,
  computeTimeoutMillis: undefined,
  acceptsStale: false
}

/** the options of one call, or why one is invalid @internal */
export const stampedeOf = (options: GetOrComputeOptions<never> | undefined): Stampede | string => {
  if (
    options === undefined ||
    (options.lock !== true && options.staleWhileRevalidate === undefined && options.staleIfError === undefined)
  ) {
    return PLAIN
  }
  const window = (name: string, input: unknown, fallback: number) =>
    input === undefined ? fallback : durationMillis(name, input, "window")
  const lockTimeoutMillis = window("lockTimeout", options.lockTimeout, DEFAULT_LOCK_TIMEOUT_MILLIS)
  if (typeof lockTimeoutMillis === "string") return lockTimeoutMillis
  const revalidateMillis = window("staleWhileRevalidate", options.staleWhileRevalidate, 0)
  if (typeof revalidateMillis === "string") return revalidateMillis
  const ifErrorMillis = window("staleIfError", options.staleIfError, 0)
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
    acceptsStale: revalidateMillis > 0 || ifErrorMillis > 0
  }
}

type Found<V> = Read<V, unknown> & { readonly _tag: "Found" }
type Stale<V> = Found<V> & { readonly stale: true; readonly freshUntil: number; readonly writtenAt: number }
interface Marks {
  readonly backend: Backend
  readonly degraded: boolean
}

const isFresh = <V>(read: Read<V, unknown>): read is Found<V> => read._tag === "Found" && !read.stale
const staleOf = <V>(read: Read<V, unknown>): Stale<V> | undefined =>
  read._tag === "Found" && read.stale ? (read as unknown as Stale<V>) : undefined

/**
 * The tag marks a computed value is stored under (the Effect 3 line's `Adaptive.tagsOf`): an Effect, since a tag's
 * stamp may have to be read or created; undefined when the value has no tags. The wrapper puts the core's tag head on
 * the stored entry (sealed or not).
 * @internal
 */
export type TagsOf<V> = (
  value: V
) => Effect.Effect<((stored: string) => string) | undefined, CacheBackendUnavailable | CacheValueInvalid>

/** what a keyspace gives getOrCompute @internal */
export interface Entries<V> {
  readonly encode: (value: V) => string | CacheValueInvalid
  /** one read through the keyspace's pipeline on `cache` (`stale`: values past their freshness are accepted) */
  readonly read: (
    cache: DistributedCacheService,
    storeKey: string,
    stale: boolean
  ) => Effect.Effect<Read<V, unknown>, CacheBackendUnavailable>
  readonly cachedOf: (read: Found<V>) => Cached<V>
  /** a write through the keyspace's near cache (kept at once when `kept` says the write reached Redis) */
  readonly writeThrough: <A, E>(
    cache: DistributedCacheService,
    storeKey: string,
    json: string | undefined,
    ttl: number | undefined,
    write: Effect.Effect<A, E>,
    kept: (a: A) => boolean
  ) => Effect.Effect<A, E>
}

/** the getOrCompute of one keyspace @internal */
export const makeGetOrCompute = <V>(entries: Entries<V>) => {
  const { cachedOf, encode, read, writeThrough } = entries
  const inflight = new WeakMap<DistributedCacheService, Map<string, Deferred.Deferred<Cached<V>, unknown>>>()
  const refreshing = new WeakMap<DistributedCacheService, Set<string>>()
  const perCache = <A>(map: WeakMap<DistributedCacheService, A>, cache: DistributedCacheService, make: () => A) => {
    let a = map.get(cache)
    if (a === undefined) {
      a = make()
      map.set(cache, a)
    }
    return a
  }
  const servedStale = (found: Stale<V>, now: number): Cached<V> => ({
    ...cachedOf(found),
    stale: true,
    age: Duration.millis(Math.max(0, now - found.writtenAt))
  })

  return <E, R>(
    cache: DistributedCacheService,
    storeKey: string,
    ttl: number | undefined,
    compute: Effect.Effect<V, E, R>,
    shouldCache: ((value: V) => boolean) | undefined,
    s: Stampede,
    tagsOf?: TagsOf<V>
  ): Effect.Effect<Cached<V>, E | CacheBackendUnavailable | CacheValueInvalid, R> => {
    type Failure = E | CacheBackendUnavailable | CacheValueInvalid
    const keepMillis = Math.max(s.revalidateMillis, s.ifErrorMillis)
    const sealed = ttl !== undefined && keepMillis > 0
    const again = read(cache, storeKey, s.acceptsStale)
    const now = Effect.clockWith((clock) => Effect.succeed(clock.currentTimeMillisUnsafe()))

    const store = (value: V, miss: Marks): Effect.Effect<Cached<V>, CacheBackendUnavailable | CacheValueInvalid> => {
      if (shouldCache !== undefined && !shouldCache(value)) {
        return Effect.succeed({ value, backend: miss.backend, degraded: miss.degraded, near: false, stale: false })
      }
      const json = encode(value)
      if (typeof json !== "string") return Effect.fail(json)
      if (tagsOf === undefined) return storeJson(value, json, undefined)
      return Effect.flatMap(tagsOf(value), (wrap) => storeJson(value, json, wrap))
    }
    /** writes an encoded value, under its tags' marks when `wrap` puts them on */
    const storeJson = (
      value: V,
      json: string,
      wrap: ((stored: string) => string) | undefined
    ): Effect.Effect<Cached<V>, CacheBackendUnavailable | CacheValueInvalid> => {
      const write = (entry: string, ttlMillis: number | undefined, age: Duration.Duration | undefined) => {
        const stored = wrap === undefined ? entry : wrap(entry)
        return Effect.map(
          writeThrough(
            cache,
            storeKey,
            stored,
            ttlMillis,
            cache.set(storeKey, stored, ttlMillis),
            (written) => written.backend === "redis"
          ),
          (written): Cached<V> => ({
            value,
            backend: written.backend,
            degraded: written.degraded,
            near: false,
            stale: false,
            age
          })
        )
      }
      if (!sealed) return write(json, ttl, undefined)
      // sealed with its freshness, kept for the longest stale window beyond it (the envelope of the core)
      return Effect.flatMap(now, (at) => write(seal(json, at, ttl), ttl + keepMillis, Duration.zero))
    }

    /** computes and stores; within staleIfError a failure (or a computeTimeout) of `compute` serves `fallback` */
    const computeAndStore = (miss: Marks, fallback: Stale<V> | undefined): Effect.Effect<Cached<V>, Failure, R> => {
      const usable = fallback !== undefined && s.ifErrorMillis > 0 ? fallback : undefined
      if (usable === undefined) return Effect.flatMap(compute, (value) => store(value, miss))
      const limit = usable.freshUntil + s.ifErrorMillis
      const bounded =
        s.computeTimeoutMillis === undefined
          ? Effect.map(compute, (value) => ({ value }))
          : Effect.map(Effect.timeoutOption(compute, Duration.millis(s.computeTimeoutMillis)), (o) =>
              o._tag === "Some" ? { value: o.value } : undefined
            )
      return Effect.matchCauseEffect(bounded, {
        onSuccess: (result) =>
          result !== undefined ? store(result.value, miss) : Effect.map(now, (at) => servedStale(usable, at)),
        onFailure: (cause) =>
          Effect.flatMap(now, (at) => {
            if (!Cause.hasFails(cause) || at >= limit) return Effect.failCause(cause)
            return Effect.as(
              Effect.logWarning(
                "effect-failclosed: getOrCompute's compute failed; the stale value is served (staleIfError)"
              ),
              servedStale(usable, at)
            )
          })
      })
    }

    const freshOrCompute = (read: Read<V, unknown>, fallback: Stale<V> | undefined) =>
      isFresh(read) ? Effect.succeed(cachedOf(read)) : computeAndStore(read, staleOf<V>(read) ?? fallback)

    const lockKey = storeKey + LOCK_SUFFIX
    const acquire = (token: string) =>
      Effect.map(cache.acquireLock(lockKey, token, s.lockTimeoutMillis), (t) => t.value)
    const release = (token: string) => Effect.ignore(cache.releaseLock(lockKey, token))
    const holding = (token: string, fallback: Stale<V> | undefined): Effect.Effect<Cached<V>, Failure, R> =>
      Effect.ensuring(
        Effect.flatMap(again, (read) => freshOrCompute(read, fallback)),
        release(token)
      )
    /** another node (of either line) holds the lock: poll the entry, take the lock when free, give up at the deadline */
    const waitFor = (
      token: string,
      fallback: Stale<V> | undefined,
      deadline: number
    ): Effect.Effect<Cached<V>, Failure, R> => {
      const poll = (delay: number, at: number): Effect.Effect<Cached<V>, Failure, R> =>
        Effect.andThen(
          Effect.sleep(Duration.millis(Math.max(0, Math.min(delay, deadline - at)))),
          Effect.flatMap(Effect.zip(again, now), ([read, at]) => {
            if (isFresh(read)) return Effect.succeed(cachedOf(read))
            const stale = staleOf<V>(read) ?? fallback
            return Effect.flatMap(acquire(token), (taken) =>
              taken
                ? holding(token, stale)
                : at >= deadline
                  ? computeAndStore(read, stale)
                  : poll(Math.min(delay * 2, MAX_POLL_MILLIS), at)
            )
          })
        )
      return Effect.flatMap(now, (at) => poll(FIRST_POLL_MILLIS, at))
    }
    const lead = (fallback: Stale<V> | undefined): Effect.Effect<Cached<V>, Failure, R> => {
      if (!s.lock) return Effect.flatMap(again, (read) => freshOrCompute(read, fallback))
      const token = crypto.randomUUID()
      return Effect.flatMap(acquire(token), (taken) =>
        taken
          ? holding(token, fallback)
          : Effect.flatMap(now, (at) => waitFor(token, fallback, at + s.lockTimeoutMillis))
      )
    }

    /** single flight per cache and key: the work runs in a detached fiber, a caller's interruption leaves it to others */
    const singleFlight = (work: Effect.Effect<Cached<V>, Failure, R>): Effect.Effect<Cached<V>, Failure, R> =>
      Effect.suspend(() => {
        const map = perCache(inflight, cache, () => new Map())
        const running = map.get(storeKey)
        if (running !== undefined) return Deferred.await(running) as Effect.Effect<Cached<V>, Failure>
        const deferred = Deferred.makeUnsafe<Cached<V>, unknown>()
        map.set(storeKey, deferred)
        return work.pipe(
          Effect.exit,
          Effect.flatMap((exit) =>
            Effect.sync(() => {
              map.delete(storeKey)
              Deferred.doneUnsafe(deferred, exit as Exit.Exit<Cached<V>, unknown>)
            })
          ),
          Effect.forkDetach,
          Effect.andThen(Deferred.await(deferred) as Effect.Effect<Cached<V>, Failure>)
        )
      })

    /** one background refresh per key in this process; its failure is logged, never served */
    const revalidate = (found: Stale<V>): Effect.Effect<void, never, R> =>
      Effect.suspend(() => {
        const set = perCache(refreshing, cache, () => new Set<string>())
        if (set.has(storeKey)) return Effect.void
        set.add(storeKey)
        return lead(found).pipe(
          Effect.catchCause((cause) =>
            Effect.logWarning("effect-failclosed: getOrCompute's background refresh failed", Cause.pretty(cause))
          ),
          Effect.ensuring(Effect.sync(() => set.delete(storeKey))),
          Effect.forkDetach,
          Effect.asVoid
        )
      })

    return Effect.flatMap(Effect.zip(again, now), ([first, at]) => {
      if (isFresh(first)) return Effect.succeed(cachedOf(first))
      const stale = staleOf<V>(first)
      // within staleWhileRevalidate: answer now with the stale value, refresh once in the background
      if (stale !== undefined && s.revalidateMillis > 0 && at < stale.freshUntil + s.revalidateMillis) {
        return Effect.as(revalidate(stale), servedStale(stale, at))
      }
      return singleFlight(lead(stale))
    })
  }
}
