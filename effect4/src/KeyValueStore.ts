/**
 * Effect 4's `KeyValueStore` (`effect/persistence/KeyValueStore`) kept in the `DistributedCache`: the mode decides
 * what an unavailable Redis means (a `KeyValueStoreError` whose `cause` is the `CacheBackendUnavailable`). Keys are
 * the core's layout (`<prefix>:v:<name>:-:<hash>`), values the Effect 3 line's format (`s` + text, `b` + base64), so
 * an Effect 3 node's `effect-failclosed/KeyValueStore` of the same name reads and writes the same entries.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as PersistenceKeyValueStore from "effect/persistence/KeyValueStore"
import type * as Duration from "effect/Duration"
import { exceedsBytes, FeatureKeys, keyValueStoreHead } from "@effect-failclosed/core"
import { DistributedCache, type DistributedCacheService } from "./DistributedCache.js"
import { optionChecks, ttlMillisOf } from "./internal/options.js"

/**
 * The options of {@link layer}.
 *
 * @example
 * ```ts
 * import type { KeyValueStore } from "effect-failclosed-effect4"
 *
 * const options: KeyValueStore.KeyValueStoreOptions = { name: "sessions", timeToLive: "1 hour" }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface KeyValueStoreOptions {
  /** the store's name: part of every key (stores of one name share entries, on both Effect lines) */
  readonly name: string
  /** the time to live of every entry (default: none) */
  readonly timeToLive?: Duration.Input | undefined
  /** the largest value, in UTF-8 bytes of its stored form (default 1 MiB) */
  readonly maxValueBytes?: number | undefined
}

const TAG_STRING = "s"
const TAG_BYTES = "b"
const LONE_SURROGATE = /\p{Surrogate}/u
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/
const encoder = new TextEncoder()

const error = (method: string, message: string, cause?: unknown) =>
  new PersistenceKeyValueStore.KeyValueStoreError(
    cause === undefined ? { method, message } : { method, message, cause }
  )

const makeService = (
  cache: DistributedCacheService,
  options: { readonly name: string; readonly ttlMillis: number | undefined; readonly maxValueBytes: number }
): PersistenceKeyValueStore.KeyValueStore => {
  const keys = new FeatureKeys((keyPrefix) => keyValueStoreHead(keyPrefix, options.name), "string")
  const prefix = keys.head(cache.keyPrefix)
  const storeKey = (key: string): string => keys.key(cache.keyPrefix, undefined, key)
  const unavailable = (method: string) => (e: { readonly message: string }) => error(method, e.message, e)
  const notOurs = (method: string) =>
    error(method, "the stored entry was not written by an effect-failclosed KeyValueStore")

  const read = (method: string, key: string) =>
    Effect.map(Effect.mapError(cache.get(storeKey(key)), unavailable(method)), (entry) => entry.value)

  return PersistenceKeyValueStore.make({
    get: (key) =>
      Effect.flatMap(read("get", key), (stored) => {
        if (stored === undefined) return Effect.succeed(undefined)
        const tag = stored.charAt(0)
        // a binary value read as a string is its base64, as Effect's own stores do
        return tag === TAG_STRING || tag === TAG_BYTES ? Effect.succeed(stored.slice(1)) : Effect.fail(notOurs("get"))
      }),
    getUint8Array: (key) =>
      Effect.flatMap(read("getUint8Array", key), (stored) => {
        if (stored === undefined) return Effect.succeed(undefined)
        const tag = stored.charAt(0)
        if (tag === TAG_STRING) return Effect.succeed(encoder.encode(stored.slice(1)))
        if (tag === TAG_BYTES && BASE64.test(stored.slice(1))) {
          return Effect.succeed(new Uint8Array(Buffer.from(stored.slice(1), "base64")))
        }
        return Effect.fail(notOurs("getUint8Array"))
      }),
    set: (key, value) => {
      if (typeof value === "string" && LONE_SURROGATE.test(value)) {
        return Effect.fail(error("set", "value is not well-formed UTF-16 (a lone surrogate); nothing was written"))
      }
      const payload = typeof value === "string" ? value : Buffer.from(value).toString("base64")
      if (exceedsBytes(payload, options.maxValueBytes)) {
        return Effect.fail(error("set", `value is larger than ${options.maxValueBytes} bytes; nothing was written`))
      }
      const stored = (typeof value === "string" ? TAG_STRING : TAG_BYTES) + payload
      return Effect.asVoid(Effect.mapError(cache.set(storeKey(key), stored, options.ttlMillis), unavailable("set")))
    },
    remove: (key) => Effect.asVoid(Effect.mapError(cache.invalidate(storeKey(key)), unavailable("remove"))),
    clear: Effect.suspend(() => Effect.asVoid(Effect.mapError(cache.clear(prefix), unavailable("clear")))),
    size: Effect.suspend(() => Effect.mapError(cache.count(prefix), unavailable("size"))),
    // keys are hashed into Redis keys (tenant-safe, bounded length): the original keys cannot be listed
    keys: Effect.fail(error("keys", "effect-failclosed stores keep hashed keys; they cannot be listed"))
  })
}

/**
 * A Layer of Effect 4's `KeyValueStore` over the `DistributedCache` of the context. Invalid options are a synchronous
 * `Error`. `keys` is not supported (keys are hashed).
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { KeyValueStore as EffectKeyValueStore } from "effect/persistence"
 * import { KeyValueStore, LocalOnly } from "effect-failclosed-effect4"
 *
 * const store = KeyValueStore.layer({ name: "sessions" }).pipe(Layer.provide(LocalOnly))
 * const program = Effect.gen(function* () {
 *   const kv = yield* EffectKeyValueStore.KeyValueStore
 *   yield* kv.set("greeting", "hello")
 *   return yield* kv.get("greeting")
 * }).pipe(Effect.provide(store))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: KeyValueStoreOptions
): Layer.Layer<PersistenceKeyValueStore.KeyValueStore, never, DistributedCache> => {
  const check = optionChecks("KeyValueStore")
  const name = check.name(options.name)
  const ttl = options.timeToLive === undefined ? undefined : ttlMillisOf(options.timeToLive)
  const ttlMillis = typeof ttl === "string" ? check.invalid(ttl) : ttl
  const maxValueBytes = check.positiveInteger("maxValueBytes", options.maxValueBytes, 1024 * 1024)
  return Layer.effect(
    PersistenceKeyValueStore.KeyValueStore,
    DistributedCache.useSync((cache) => makeService(cache, { name, ttlMillis, maxValueBytes }))
  )
}
