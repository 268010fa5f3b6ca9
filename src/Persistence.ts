/**
 * `@effect/experimental` `Persistence` backed by effect-failclosed: `PersistedCache.make` (and
 * anything else written against `BackingPersistence` / `ResultPersistence`) keeps its code and
 * gets the failure policy of the mode Layer that provides the `DistributedCache`. Swap
 * `Persistence/Redis.layerResult({ host, port })` for `layerResult()` over `StrictDistributed`
 * and a Redis outage fails each call within the client's command timeout instead of hanging.
 *
 * This module is a sub-path export (`effect-failclosed/Persistence`): the package root does not
 * import it, so `@effect/experimental` is needed only by the applications that use it (it is an
 * optional peer dependency).
 *
 * Errors are `@effect/experimental`'s `PersistenceError`:
 *
 * - Redis unavailable (down, paused, timed out, cooling down): a `PersistenceBackingError` whose
 *   `method` names the store method (`get`, `getMany`, `set`, `setMany`, `remove`, `clear`) and
 *   whose `cause` is the `CacheBackendUnavailable` ({@link backendUnavailable} extracts it).
 * - a value that cannot be stored (not JSON-serialisable, or over `maxValueBytes`): a
 *   `PersistenceBackingError` whose `cause` is a `CacheValueInvalid`; nothing is written.
 * - an entry that is not JSON: a `PersistenceBackingError` whose `cause` is a `CacheEntryInvalid`.
 * - an entry that does not decode with the request's Schemas: `ResultPersistence` turns it into a
 *   `PersistenceParseError`, as it does over every backing store.
 *
 * What the interface cannot express:
 *
 * - degraded marks: under `ExplicitDegraded`, `get`/`set` are served by the node-local fallback
 *   while Redis is unavailable and the result cannot say so (the security events and
 *   `DistributedCache.stats` tell); `remove` and `clear` fail closed in every Redis mode.
 * - atomic batches: `setMany` writes entry by entry (pipelined), so a Redis failure may leave
 *   some of the entries written (a value that cannot be stored fails the batch before any entry
 *   is written); `getMany` reads entry by entry.
 * - `PersistedCache`'s own in-memory tier (`inMemoryCapacity`, `inMemoryTTL`, 10 seconds by
 *   default) is node-local and caches failures too: see docs/effect-experimental.md.
 *
 * Keys: a store's entries live under `<keyPrefix>:p:<storeId>:` (the store id written like a
 * keyspace name, see `KeyLayout`), each key the hash of the entry key's JSON, so two stores never
 * share an entry and no entry key, whatever its characters, reaches another store's keys or a
 * `Keyspace`'s.
 *
 * @since 0.1.0
 */
import * as Persistence from "@effect/experimental/Persistence"
import { Invalid, type Read, ReadPipeline } from "@effect-failclosed/core"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { DistributedCache, type DistributedCacheService } from "./DistributedCache.js"
import { CacheBackendUnavailable, CacheEntryInvalid, CacheValueInvalid } from "./errors.js"
import { exceedsBytes, FeatureKeys, persistenceHead } from "@effect-failclosed/core"
import { optionChecks, ttlMillisOf } from "./internal/options.js"
import { readEntry } from "./internal/readThrough.js"

/**
 * Options of {@link makeBacking}, {@link layerBacking} and {@link layerResult}.
 *
 * @example
 * ```ts
 * import type { PersistenceOptions } from "effect-failclosed/Persistence"
 *
 * const options: PersistenceOptions = { maxValueBytes: 64 * 1024 }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface PersistenceOptions {
  /** largest value accepted, in bytes of its JSON (default 1 MiB); larger fails with a `CacheValueInvalid` cause */
  readonly maxValueBytes?: number | undefined
}

/**
 * The prefix of every Redis key of one store: `<keyPrefix>:p:<storeId>:` (see `KeyLayout`). Stores
 * never share a key, and `clear` deletes exactly the keys under it.
 *
 * @example
 * ```ts
 * import { storePrefix } from "effect-failclosed/Persistence"
 *
 * // what an operator passes to `redis-cli --scan --pattern`
 * const pattern = storePrefix("fc", "users") + "*"
 * ```
 *
 * @since 0.1.0
 * @category key layout
 */
export const storePrefix = (keyPrefix: string, storeId: string): string => persistenceHead(keyPrefix, storeId)

/**
 * Returns the `CacheBackendUnavailable` behind a `PersistenceError` of this module, if that is
 * what it was: the way back from `@effect/experimental`'s error to the cache's mode and reason
 * (for example to answer 503).
 *
 * @example
 * ```ts
 * import type * as ExperimentalPersistence from "@effect/experimental/Persistence"
 * import { Effect, Option } from "effect"
 * import { backendUnavailable } from "effect-failclosed/Persistence"
 *
 * const status = (error: ExperimentalPersistence.PersistenceError) =>
 *   Option.match(backendUnavailable(error), { onNone: () => 500, onSome: () => 503 })
 *
 * const program = (lookup: Effect.Effect<string, ExperimentalPersistence.PersistenceError>) =>
 *   lookup.pipe(Effect.catchTag("PersistenceError", (error) => Effect.succeed(`status ${status(error)}`)))
 * ```
 *
 * @since 0.1.0
 * @category errors
 */
export const backendUnavailable = (error: Persistence.PersistenceError): Option.Option<CacheBackendUnavailable> => {
  // ResultPersistence wraps a failed setMany once more: PersistenceBackingError("setMany", <our error>)
  let cause: unknown = error
  while (cause instanceof Persistence.PersistenceBackingError) cause = cause.cause
  return cause instanceof CacheBackendUnavailable ? Option.some(cause) : Option.none()
}

const backingError =
  (method: string) =>
  (cause: unknown): Persistence.PersistenceError =>
    Persistence.PersistenceBackingError.make(method, cause)

const errorOf = {
  get: backingError("get"),
  getMany: backingError("getMany"),
  set: backingError("set"),
  setMany: backingError("setMany"),
  remove: backingError("remove"),
  clear: backingError("clear")
}

const NOT_JSON = new Invalid("the stored entry is not JSON")
const parseJson = (json: string): unknown => {
  try {
    return JSON.parse(json)
  } catch {
    return NOT_JSON
  }
}

const validate = (options: PersistenceOptions | undefined) => ({
  maxValueBytes: optionChecks("Persistence").positiveInteger("maxValueBytes", options?.maxValueBytes, 1024 * 1024)
})

const makeStore = (
  cache: DistributedCacheService,
  storeId: string,
  options: ReturnType<typeof validate>
): Persistence.BackingPersistenceStore => {
  const { maxValueBytes } = options
  // `<keyPrefix>:p:<storeId>:-:<hash of the key's JSON>`: JSON.stringify escapes lone surrogates, so distinct keys
  // hash distinct inputs
  const keys = new FeatureKeys((keyPrefix) => persistenceHead(keyPrefix, storeId), "string")
  const prefix = keys.head(cache.keyPrefix)
  const storeKey = (key: string): string => keys.key(cache.keyPrefix, undefined, key)

  // entries are read through the core's read pipeline (internal/readThrough): JSON decoded once, where it is read
  const pipeline = new ReadPipeline<unknown>({ decode: parseJson, shareDecoded: false, local: cache.get.local })
  const none = Effect.succeed(Option.none<unknown>())
  const read =
    (method: "get" | "getMany") =>
    (entry: Read<unknown, unknown>): Effect.Effect<Option.Option<unknown>, Persistence.PersistenceError> => {
      if (entry._tag === "Found") return Effect.succeed(Option.some(entry.value))
      if (entry.invalid === undefined) return none
      return Effect.fail(errorOf[method](new CacheEntryInvalid({ keyspace: storeId, reason: entry.invalid.reason })))
    }
  const readGet = read("get")
  const readGetMany = read("getMany")

  const get = (key: string) =>
    Effect.flatMap(Effect.mapError(readEntry(pipeline, cache, storeKey(key), false), errorOf.get), readGet)
  const getOne = (key: string) =>
    Effect.flatMap(Effect.mapError(readEntry(pipeline, cache, storeKey(key), false), errorOf.getMany), readGetMany)

  const invalidValue = (method: "set" | "setMany", reason: string) =>
    Effect.fail(errorOf[method](new CacheValueInvalid({ keyspace: storeId, reason: `${reason}; nothing was written` })))

  /** a value as it is stored: the write to make (an expired time to live: a removal), or why it cannot be stored */
  type Write = { readonly key: string; readonly json: string | undefined; readonly ttlMillis: number | undefined }
  const prepare = (
    method: "set" | "setMany",
    key: string,
    value: unknown,
    ttl: Option.Option<Duration.Duration>
  ): Write | Effect.Effect<never, Persistence.PersistenceError> => {
    let json: string | undefined
    try {
      json = JSON.stringify(value)
    } catch (error) {
      return invalidValue(method, `the value is not JSON-serialisable (${String(error)})`)
    }
    if (json === undefined) return invalidValue(method, "the value is not JSON-serialisable")
    if (exceedsBytes(json, maxValueBytes)) {
      return invalidValue(method, `the value is larger than ${maxValueBytes} bytes`)
    }
    let ttlMillis: number | undefined
    if (Option.isSome(ttl)) {
      const millis = ttlMillisOf(ttl.value)
      // a time to live of zero or less: the entry is expired at once, so none may stay behind
      if (typeof millis === "string") return { key: storeKey(key), json: undefined, ttlMillis: undefined }
      ttlMillis = millis
    }
    return { key: storeKey(key), json, ttlMillis }
  }
  const perform = (method: "set" | "setMany", w: Write): Effect.Effect<void, Persistence.PersistenceError> =>
    w.json === undefined
      ? Effect.asVoid(Effect.mapError(cache.invalidate(w.key), errorOf[method]))
      : Effect.asVoid(Effect.mapError(cache.set(w.key, w.json, w.ttlMillis), errorOf[method]))

  const set = (key: string, value: unknown, ttl: Option.Option<Duration.Duration>) => {
    const w = prepare("set", key, value, ttl)
    return Effect.isEffect(w) ? w : perform("set", w)
  }
  /** every entry checked before any is written: a value that cannot be stored fails the batch, and nothing is written */
  const setMany = (
    entries: Iterable<readonly [string, unknown, Option.Option<Duration.Duration>]>
  ): Effect.Effect<void, Persistence.PersistenceError> => {
    const writes: Array<Write> = []
    for (const [key, value, ttl] of entries) {
      const w = prepare("setMany", key, value, ttl)
      if (Effect.isEffect(w)) return w
      writes.push(w)
    }
    return Effect.forEach(writes, (w) => perform("setMany", w), { concurrency: "unbounded", discard: true })
  }

  return {
    get,
    getMany: (keys) => Effect.forEach(keys, getOne, { concurrency: "unbounded" }),
    set,
    setMany: (entries) => Effect.suspend(() => setMany(entries)),
    remove: (key) => Effect.asVoid(Effect.mapError(cache.invalidate(storeKey(key)), errorOf.remove)),
    // suspended: each run asks the cache anew, whatever its implementation does eagerly
    clear: Effect.suspend(() => Effect.asVoid(Effect.mapError(cache.clear(prefix), errorOf.clear)))
  }
}

/**
 * Builds a `BackingPersistence` over the `DistributedCache` in context: each `storeId` gets its
 * own partition of keys. Invalid options are a programmer error: a synchronous `Error`, before
 * anything touches Redis.
 *
 * @example
 * ```ts
 * import { Effect, Option } from "effect"
 * import { LocalOnly } from "effect-failclosed"
 * import { makeBacking } from "effect-failclosed/Persistence"
 *
 * const program = Effect.gen(function* () {
 *   const backing = yield* makeBacking()
 *   const store = yield* backing.make("users")
 *   yield* store.set("1", { name: "Ada" }, Option.none())
 *   return yield* store.get("1")
 * }).pipe(Effect.scoped, Effect.provide(LocalOnly))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeBacking = (
  options?: PersistenceOptions
): Effect.Effect<Persistence.BackingPersistence, never, DistributedCache> => {
  const validated = validate(options)
  return Effect.map(DistributedCache, (cache) =>
    Persistence.BackingPersistence.of({
      [Persistence.BackingPersistenceTypeId]: Persistence.BackingPersistenceTypeId,
      make: (storeId) => Effect.sync(() => makeStore(cache, storeId, validated))
    })
  )
}

/**
 * Provides `@effect/experimental`'s `BackingPersistence` from the `DistributedCache` in context,
 * so the mode Layer below it decides what an outage means. The drop-in for
 * `Persistence/Redis.layer(redisOptions)`.
 *
 * @example
 * ```ts
 * import * as ExperimentalPersistence from "@effect/experimental/Persistence"
 * import { Duration, Effect, Layer, Option } from "effect"
 * import { LocalOnly } from "effect-failclosed"
 * import { layerBacking } from "effect-failclosed/Persistence"
 *
 * const BackingLive = layerBacking().pipe(Layer.provide(LocalOnly))
 *
 * const program = Effect.gen(function* () {
 *   const backing = yield* ExperimentalPersistence.BackingPersistence
 *   const store = yield* backing.make("sessions")
 *   yield* store.set("s1", { user: 1 }, Option.some(Duration.minutes(30)))
 * }).pipe(Effect.scoped, Effect.provide(BackingLive))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerBacking = (
  options?: PersistenceOptions
): Layer.Layer<Persistence.BackingPersistence, never, DistributedCache> =>
  Layer.effect(Persistence.BackingPersistence, makeBacking(options))

/**
 * Provides `@effect/experimental`'s `ResultPersistence` (what `PersistedCache.make` needs) from
 * the `DistributedCache` in context. The drop-in for `Persistence/Redis.layerResult(redisOptions)`.
 *
 * @example
 * ```ts
 * import * as PersistedCache from "@effect/experimental/PersistedCache"
 * import { Effect, Layer, PrimaryKey, Schema } from "effect"
 * import { RedisClient, StrictDistributed } from "effect-failclosed"
 * import { layerResult } from "effect-failclosed/Persistence"
 *
 * class GetUser extends Schema.TaggedRequest<GetUser>()("GetUser", {
 *   failure: Schema.String,
 *   success: Schema.Struct({ name: Schema.String }),
 *   payload: { id: Schema.Number }
 * }) {
 *   [PrimaryKey.symbol]() {
 *     return `user:${this.id}`
 *   }
 * }
 *
 * // was: PersistenceRedis.layerResult({ host: "localhost" })
 * const PersistenceLive = layerResult().pipe(
 *   Layer.provide(StrictDistributed),
 *   Layer.provide(RedisClient.layerConfig())
 * )
 *
 * const program = Effect.gen(function* () {
 *   const users = yield* PersistedCache.make({
 *     storeId: "users",
 *     lookup: (request: GetUser) => Effect.succeed({ name: `user ${request.id}` }),
 *     timeToLive: () => "1 hour"
 *   })
 *   return yield* users.get(new GetUser({ id: 1 }))
 * }).pipe(Effect.scoped, Effect.provide(PersistenceLive))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerResult = (
  options?: PersistenceOptions
): Layer.Layer<Persistence.ResultPersistence, never, DistributedCache> =>
  Persistence.layerResult.pipe(Layer.provide(layerBacking(options)))
