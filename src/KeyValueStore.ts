/**
 * A `@effect/platform` `KeyValueStore` backed by effect-failclosed. Code written against the
 * platform's `KeyValueStore` (or its `SchemaStore`s) gets the failure policy of the mode Layer
 * that provides the `DistributedCache`: with `StrictDistributed` a Redis outage is a failure of
 * the operation, never a miss and never node-local state.
 *
 * Failures are the platform's `PlatformError`: an unavailable Redis is a `SystemError` (reason
 * `"TimedOut"` for a timeout, `"Unknown"` otherwise) whose `message` names the cache's
 * operation, mode and reason and whose `cause` is the `CacheBackendUnavailable`
 * ({@link backendUnavailable} extracts it). An entry this module did not write is a
 * `SystemError` with reason `"InvalidData"`; a value over the size limit a `BadArgument`.
 *
 * What the `KeyValueStore` interface cannot express, and how this store handles it:
 *
 * - time to live per entry: every `set` (and `modify`) writes with the store's `timeToLive`;
 *   use a `Keyspace` for a time to live per call.
 * - degraded marks: under `ExplicitDegraded`, `get`/`set` are served by the node-local fallback
 *   while Redis is unavailable and the result cannot say so; only the security events and
 *   `DistributedCache.stats` tell. `remove`, `clear` and `size` fail closed in every Redis mode.
 *   Use a `Keyspace` where a caller must see `degraded`.
 * - tenant partitions: there is no per-call tenant; build one store per partition (its own
 *   `name`), or use a `Keyspace` with `{ tenant }`.
 * - atomic updates: `modify` is a `get` then a `set`, not atomic across processes.
 *
 * Keys are hashed (SHA-256 of the key's JSON): key material is not stored in Redis in clear, and
 * every key, whatever its characters or length, maps to one fixed-size Redis key
 * `<keyPrefix>:v:<name>:-:<hash>`, which cannot collide with a `Keyspace` key (see `KeyLayout`).
 *
 * @since 0.1.0
 */
import * as PlatformError from "@effect/platform/Error"
import { Invalid, type Read, ReadPipeline } from "@effect-failclosed/core"
import * as PlatformKeyValueStore from "@effect/platform/KeyValueStore"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Encoding from "effect/Encoding"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { DistributedCache, type DistributedCacheService } from "./DistributedCache.js"
import { CacheBackendUnavailable } from "./errors.js"
import { exceedsBytes, FeatureKeys, keyValueStoreHead } from "@effect-failclosed/core"
import { optionChecks, ttlMillisOf } from "./internal/options.js"
import { readEntry } from "./internal/readThrough.js"

/**
 * Options of {@link make} and {@link layer}.
 *
 * @example
 * ```ts
 * import type * as KeyValueStore from "effect-failclosed/KeyValueStore"
 *
 * const options: KeyValueStore.KeyValueStoreOptions = { name: "sessions", timeToLive: "30 minutes" }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface KeyValueStoreOptions {
  /** names the store; part of every key, so stores of different names never share entries (1 to 128 characters) */
  readonly name: string
  /** time to live of every entry written (default `Duration.infinity`: no expiry) */
  readonly timeToLive?: Duration.DurationInput | undefined
  /** largest value accepted, in bytes of its stored form (default 1 MiB); larger is a `BadArgument` */
  readonly maxValueBytes?: number | undefined
}

/** stored form: one tag character, then the payload */
const TAG_STRING = "s"
const TAG_BYTES = "b"

const validate = (options: KeyValueStoreOptions) => {
  const check = optionChecks("KeyValueStore")
  const name = check.name(options.name)
  const ttl = options.timeToLive === undefined ? undefined : ttlMillisOf(options.timeToLive)
  const ttlMillis = typeof ttl === "string" ? check.invalid(ttl) : ttl
  const maxValueBytes = check.positiveInteger("maxValueBytes", options.maxValueBytes, 1024 * 1024)
  return { name, ttlMillis, maxValueBytes }
}

/**
 * Returns the `CacheBackendUnavailable` behind a `PlatformError` of this store, if that is what
 * it was: the way back from the platform's error type to the cache's mode and reason.
 *
 * @example
 * ```ts
 * import { KeyValueStore as PlatformKeyValueStore } from "@effect/platform"
 * import { Effect, Option } from "effect"
 * import * as KeyValueStore from "effect-failclosed/KeyValueStore"
 *
 * const lookup = (key: string) =>
 *   Effect.flatMap(PlatformKeyValueStore.KeyValueStore, (store) => store.get(key)).pipe(
 *     Effect.catchTag("SystemError", (error) =>
 *       Option.match(KeyValueStore.backendUnavailable(error), {
 *         onNone: () => Effect.fail(error),
 *         onSome: (unavailable) => Effect.logWarning(`cache unavailable: ${unavailable.reason}`).pipe(Effect.as(Option.none()))
 *       })
 *     )
 *   )
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export const backendUnavailable = (error: PlatformError.PlatformError): Option.Option<CacheBackendUnavailable> =>
  error._tag === "SystemError" && error.cause instanceof CacheBackendUnavailable
    ? Option.some(error.cause)
    : Option.none()

const TIMEOUT = /timed? ?out|timeout/i

const unavailable =
  (method: string) =>
  (error: CacheBackendUnavailable): PlatformError.PlatformError =>
    new PlatformError.SystemError({
      reason: TIMEOUT.test(error.reason) ? "TimedOut" : "Unknown",
      module: "KeyValueStore",
      method,
      description: error.message,
      cause: error
    })

const mapGet = unavailable("get")
const mapGetUint8Array = unavailable("getUint8Array")
const mapSet = unavailable("set")
const mapHas = unavailable("has")
const mapRemove = unavailable("remove")
const mapClear = unavailable("clear")
const mapSize = unavailable("size")

const invalidData = (method: string) =>
  new PlatformError.SystemError({
    reason: "InvalidData",
    module: "KeyValueStore",
    method,
    description: "the stored entry was not written by an effect-failclosed KeyValueStore"
  })

const encoder = new TextEncoder()

const NOT_OURS = new Invalid("the stored entry was not written by an effect-failclosed KeyValueStore")
/** the read pipeline's decoder: a stored entry as it is, when it has one of the two tags */
const taggedEntry = (stored: string): string | Invalid => {
  const tag = stored.charAt(0)
  return tag === TAG_STRING || tag === TAG_BYTES ? stored : NOT_OURS
}

/** Redis would store U+FFFD for it: the value would not read back as written */
const LONE_SURROGATE = /\p{Surrogate}/u

const badValue = (reason: string) =>
  new PlatformError.BadArgument({
    module: "KeyValueStore",
    method: "set",
    description: `${reason}; nothing was written`
  })

const makeService = (
  cache: DistributedCacheService,
  options: ReturnType<typeof validate>
): PlatformKeyValueStore.KeyValueStore => {
  const { maxValueBytes, ttlMillis } = options
  // `<keyPrefix>:v:<name>:-:<hash of the key's JSON>`: JSON.stringify escapes lone surrogates, so distinct keys hash
  // distinct inputs
  const keys = new FeatureKeys((keyPrefix) => keyValueStoreHead(keyPrefix, options.name), "string")
  const prefix = keys.head(cache.keyPrefix)
  const storeKey = (key: string): string => keys.key(cache.keyPrefix, undefined, key)

  // entries are read through the core's read pipeline (internal/readThrough); its decoder checks the tag
  const pipeline = new ReadPipeline<string>({ decode: taggedEntry, shareDecoded: true, local: cache.get.local })
  const read = (key: string) => readEntry(pipeline, cache, storeKey(key), false)

  const none = Effect.succeed(Option.none<never>())
  const readString = (
    entry: Read<string, unknown>
  ): Effect.Effect<Option.Option<string>, PlatformError.PlatformError> => {
    if (entry._tag === "Miss") return entry.invalid === undefined ? none : Effect.fail(invalidData("get"))
    // the platform's convention (layerMemory): a binary value read as a string is its base64
    return Effect.succeed(Option.some(entry.value.slice(1)))
  }
  const readBytes = (
    entry: Read<string, unknown>
  ): Effect.Effect<Option.Option<Uint8Array>, PlatformError.PlatformError> => {
    if (entry._tag === "Miss") return entry.invalid === undefined ? none : Effect.fail(invalidData("getUint8Array"))
    const stored = entry.value
    if (stored.charAt(0) === TAG_STRING) return Effect.succeed(Option.some(encoder.encode(stored.slice(1))))
    const bytes = Encoding.decodeBase64(stored.slice(1))
    return Either.isRight(bytes) ? Effect.succeed(Option.some(bytes.right)) : Effect.fail(invalidData("getUint8Array"))
  }

  const get = (key: string) => Effect.flatMap(Effect.mapError(read(key), mapGet), readString)

  const getUint8Array = (key: string) => Effect.flatMap(Effect.mapError(read(key), mapGetUint8Array), readBytes)

  const set = (key: string, value: string | Uint8Array): Effect.Effect<void, PlatformError.PlatformError> => {
    if (typeof value === "string" && LONE_SURROGATE.test(value)) {
      return Effect.fail(badValue("value is not well-formed UTF-16 (a lone surrogate)"))
    }
    const payload = typeof value === "string" ? value : Encoding.encodeBase64(value)
    if (exceedsBytes(payload, maxValueBytes))
      return Effect.fail(badValue(`value is larger than ${maxValueBytes} bytes`))
    const stored = (typeof value === "string" ? TAG_STRING : TAG_BYTES) + payload
    return Effect.asVoid(Effect.mapError(cache.set(storeKey(key), stored, ttlMillis), mapSet))
  }

  return PlatformKeyValueStore.make({
    get,
    getUint8Array,
    set,
    // an entry another writer left is an entry too
    has: (key) =>
      Effect.map(Effect.mapError(read(key), mapHas), (entry) => entry._tag === "Found" || entry.invalid !== undefined),
    remove: (key) => Effect.asVoid(Effect.mapError(cache.invalidate(storeKey(key)), mapRemove)),
    // suspended: each run asks the cache anew, whatever its implementation does eagerly
    clear: Effect.suspend(() => Effect.asVoid(Effect.mapError(cache.clear(prefix), mapClear))),
    size: Effect.suspend(() => Effect.mapError(cache.count(prefix), mapSize))
  })
}

/**
 * Builds a `KeyValueStore` over the `DistributedCache` in context. Invalid options are a
 * programmer error: a synchronous `Error`, before anything touches Redis.
 *
 * @example
 * ```ts
 * import { Effect, Option } from "effect"
 * import { LocalOnly } from "effect-failclosed"
 * import * as KeyValueStore from "effect-failclosed/KeyValueStore"
 *
 * const program = Effect.gen(function* () {
 *   const store = yield* KeyValueStore.make({ name: "sessions", timeToLive: "30 minutes" })
 *   yield* store.set("s1", "ada")
 *   return Option.getOrNull(yield* store.get("s1"))
 * }).pipe(Effect.provide(LocalOnly))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: KeyValueStoreOptions
): Effect.Effect<PlatformKeyValueStore.KeyValueStore, never, DistributedCache> => {
  const validated = validate(options)
  return Effect.map(DistributedCache, (cache) => makeService(cache, validated))
}

/**
 * Provides the platform's `KeyValueStore` tag from the `DistributedCache` in context, so the
 * mode Layer below it decides what an outage means. Invalid options are a programmer error: a
 * synchronous `Error`.
 *
 * @example
 * ```ts
 * import { KeyValueStore } from "@effect/platform"
 * import { Effect, Layer, Option } from "effect"
 * import { LocalOnly } from "effect-failclosed"
 * import * as FailClosedKeyValueStore from "effect-failclosed/KeyValueStore"
 *
 * // Effect's KeyValueStore, with the failure policy of the mode below it
 * const StoreLive = FailClosedKeyValueStore.layer({ name: "sessions", timeToLive: "30 minutes" }).pipe(
 *   Layer.provide(LocalOnly)
 * )
 *
 * const program = Effect.gen(function* () {
 *   const store = yield* KeyValueStore.KeyValueStore
 *   yield* store.set("s1", "ada")
 *   return Option.getOrNull(yield* store.get("s1"))
 * }).pipe(Effect.provide(StoreLive))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: KeyValueStoreOptions
): Layer.Layer<PlatformKeyValueStore.KeyValueStore, never, DistributedCache> =>
  Layer.effect(PlatformKeyValueStore.KeyValueStore, make(options))
