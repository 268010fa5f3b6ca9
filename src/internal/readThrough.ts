/**
 * The Effect side of the core's read pipeline (`@effect-failclosed/core` `ReadPipeline`): the round trip a read
 * could not answer locally, as one Effect over the `DistributedCache` service, and the write that keeps a near cache
 * coherent with its own writes. Used by `Keyspace` (get, set, invalidate, every form of getOrCompute), Persistence
 * and KeyValueStore.
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import {
  isRead,
  type Now,
  type Pending,
  type Read,
  type ReadPipeline,
  STORE,
  type StoreEntry
} from "@effect-failclosed/core"
import type { DistributedCacheService } from "../DistributedCache.js"
import type { CacheBackendUnavailable } from "../errors.js"
import { fetchStamps } from "./tagStamps.js"

/** the clock of a fiber (Effect's `Clock`, so `TestClock` rules), read only when the pipeline asks @internal */
export const nowOf =
  (fiber: Fiber.RuntimeFiber<unknown, unknown>): Now =>
  () =>
    Context.get(fiber.currentDefaultServices, Clock.Clock).unsafeCurrentTimeMillis()

/**
 * The rest of a read that `lookup` did not answer: the store read through the cache (its mode decides what an
 * unavailable Redis means), then `settle`. A near cache's ticket is released when the read answers or fails (see
 * below for an interrupted one).
 * @internal
 */
export const roundTrip = <V, M>(
  pipeline: ReadPipeline<V, M>,
  cache: DistributedCacheService,
  key: string,
  pending: Pending,
  now: Now,
  stale: boolean
): Effect.Effect<Read<V, M>, CacheBackendUnavailable> => {
  /** the store's answer settled, after reading the stamps of a tagged entry that are not known in process */
  const settled = (entry: StoreEntry): Effect.Effect<Read<V, M>, CacheBackendUnavailable> => {
    const unknown = pipeline.unknownStamps(key, entry.value)
    if (unknown === undefined) return Effect.succeed(pipeline.settle(key, pending, entry, now, stale))
    return Effect.map(fetchStamps(cache, pipeline.tags!, unknown), (stamps) =>
      pipeline.settle(key, pending, entry, now, stale, stamps)
    )
  }
  if (pending === STORE) {
    // a flatMap to a succeeded Effect: `Effect.map` adds a closure and a `sync` step
    return Effect.flatMap(cache.get(key), (entry) =>
      pipeline.unknownStamps(key, entry.value) === undefined
        ? Effect.succeed(pipeline.settle(key, STORE, entry, now, stale))
        : settled(entry)
    )
  }
  // No `onInterrupt` for an interrupted read: it cost about 7 µs of CPU per near miss (a loop of near misses of absent
  // keys: 37 -> 30 µs per read, a keyspace without a near cache 28). An interrupted read's ticket stays joined until
  // the key's next invalidation, write or the near cache's next flush: a ticket can only forbid a fill, never allow
  // one, so reads that join it meanwhile fill only when no invalidation came since their own round trip began.
  return Effect.matchEffect(cache.get(key), {
    onFailure: (error) => {
      pipeline.settle(key, pending, undefined, now, stale)
      return Effect.fail(error)
    },
    onSuccess: (entry) =>
      pipeline.unknownStamps(key, entry.value) === undefined
        ? Effect.succeed(pipeline.settle(key, pending, entry, now, stale))
        : Effect.tapError(settled(entry), () => Effect.sync(() => pipeline.settle(key, pending, undefined, now, stale)))
  })
}

/** one whole read: answered locally (LocalOnly memory, a near hit), or the round trip @internal */
export const readEntry = <V, M>(
  pipeline: ReadPipeline<V, M>,
  cache: DistributedCacheService,
  key: string,
  stale: boolean
): Effect.Effect<Read<V, M>, CacheBackendUnavailable> =>
  Effect.withFiberRuntime((fiber) => {
    const now = nowOf(fiber)
    const step = pipeline.lookup(key, now, stale)
    return isRead(step) ? Effect.succeed(step) : roundTrip(pipeline, cache, key, step, now, stale)
  })

/**
 * A write of `key` (a set of `json`, or an invalidate: json undefined) through the pipeline's near cache: the near
 * entry goes before the write is sent, and a set that reached Redis (`wroteRedis`) is kept near at once (read your
 * own writes with no round trip). To be called when the write runs (inside a suspended Effect).
 * @internal
 */
export const writeThrough = <V, M, A, E>(
  pipeline: ReadPipeline<V, M>,
  key: string,
  json: string | undefined,
  ttlMillis: number | undefined,
  write: Effect.Effect<A, E>,
  wroteRedis: (a: A) => boolean
): Effect.Effect<A, E> => {
  const ticket = pipeline.beginWrite(key)
  if (ticket === undefined) return write
  return Effect.onExit(write, (exit) =>
    Effect.sync(() =>
      pipeline.endWrite(key, ticket, Exit.isSuccess(exit) && wroteRedis(exit.value) ? json : undefined, ttlMillis)
    )
  )
}
