/**
 * Effect 4's `BackingPersistence` (`effect/persistence/Persistence`, under `Persistence` and `PersistedCache`) kept
 * in the `DistributedCache`: each store is a partition of the core's layout (`<prefix>:p:<storeId>:-:<hash>`),
 * values are JSON, and the mode decides what an unavailable Redis means (a `PersistenceError` whose `cause` is the
 * `CacheBackendUnavailable`).
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as EffectPersistence from "effect/persistence/Persistence"
import { exceedsBytes, FeatureKeys, persistenceHead } from "@effect-failclosed/core"
import { DistributedCache, type DistributedCacheService } from "./DistributedCache.js"
import { optionChecks } from "./internal/options.js"

/**
 * The options of {@link layerBacking}.
 *
 * @since 0.1.0
 * @category models
 */
export interface PersistenceOptions {
  /** the largest stored value, in UTF-8 bytes of its JSON (default 1 MiB) */
  readonly maxValueBytes?: number | undefined
}

const fail = (message: string, cause?: unknown) =>
  Effect.fail(new EffectPersistence.PersistenceError(cause === undefined ? { message } : { message, cause }))

const makeStore = (
  cache: DistributedCacheService,
  storeId: string,
  maxValueBytes: number
): EffectPersistence.BackingPersistenceStore => {
  const keys = new FeatureKeys((keyPrefix) => persistenceHead(keyPrefix, storeId), "string")
  const prefix = keys.head(cache.keyPrefix)
  const storeKey = (key: string) => keys.key(cache.keyPrefix, undefined, key)
  const unavailable = (e: { readonly message: string }) =>
    new EffectPersistence.PersistenceError({ message: e.message, cause: e })
  const get = (key: string) =>
    Effect.flatMap(Effect.mapError(cache.get(storeKey(key)), unavailable), (entry) => {
      if (entry.value === undefined) return Effect.succeed(undefined)
      try {
        return Effect.succeed(JSON.parse(entry.value) as object)
      } catch (cause) {
        return fail(`the stored entry of store "${storeId}" is not JSON`, cause)
      }
    })
  const set = (key: string, value: object, ttl: Duration.Duration | undefined) => {
    let json: string | undefined
    try {
      json = JSON.stringify(value)
    } catch (cause) {
      return fail("the value is not JSON-serialisable", cause)
    }
    if (json === undefined) return fail("the value is not JSON-serialisable")
    if (exceedsBytes(json, maxValueBytes)) return fail(`the value is larger than ${maxValueBytes} bytes`)
    let ttlMillis: number | undefined
    if (ttl !== undefined && Duration.isFinite(ttl)) {
      const millis = Math.ceil(Duration.toMillis(ttl))
      // a zero time to live: nothing to keep
      if (millis <= 0) return Effect.asVoid(Effect.mapError(cache.invalidate(storeKey(key)), unavailable))
      ttlMillis = millis
    }
    return Effect.asVoid(Effect.mapError(cache.set(storeKey(key), json, ttlMillis), unavailable))
  }
  return {
    get,
    getMany: (keys) => Effect.forEach(keys, get) as never,
    set,
    setMany: (entries) => Effect.forEach(entries, ([key, value, ttl]) => set(key, value, ttl), { discard: true }),
    remove: (key) => Effect.asVoid(Effect.mapError(cache.invalidate(storeKey(key)), unavailable)),
    clear: Effect.suspend(() => Effect.asVoid(Effect.mapError(cache.clear(prefix), unavailable)))
  }
}

/**
 * A Layer of Effect 4's `BackingPersistence` over the `DistributedCache` of the context.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { Persistence as EffectPersistence } from "effect/persistence"
 * import { LocalOnly, Persistence } from "effect-failclosed-effect4"
 *
 * const persistence = EffectPersistence.layer.pipe(Layer.provide(Persistence.layerBacking()), Layer.provide(LocalOnly))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerBacking = (
  options: PersistenceOptions = {}
): Layer.Layer<EffectPersistence.BackingPersistence, never, DistributedCache> => {
  const maxValueBytes = optionChecks("Persistence").positiveInteger("maxValueBytes", options.maxValueBytes, 1024 * 1024)
  return Layer.effect(
    EffectPersistence.BackingPersistence,
    DistributedCache.useSync((cache) =>
      EffectPersistence.BackingPersistence.of({
        make: (storeId) => Effect.sync(() => makeStore(cache, storeId, maxValueBytes))
      })
    )
  )
}

/**
 * Effect 4's `Persistence` over {@link layerBacking}: what `PersistedCache` needs.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { LocalOnly, Persistence } from "effect-failclosed-effect4"
 *
 * const persistence = Persistence.layer().pipe(Layer.provide(LocalOnly))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: PersistenceOptions = {}
): Layer.Layer<EffectPersistence.Persistence, never, DistributedCache> =>
  EffectPersistence.layer.pipe(Layer.provide(layerBacking(options)))
