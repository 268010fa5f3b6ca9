/**
 * The implementation of `Keyspace.make`: option checks, key hashing and partitions, the value codec (Schema, or the
 * plain check of a plain Schema), the near cache, and the operations over the `DistributedCache` of the caller.
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import type { Cached, DistributedCache, DistributedCacheService } from "../DistributedCache.js"
import { type CacheBackendUnavailable, CacheEntryInvalid, CacheValueInvalid, type InputField } from "../errors.js"
import { cachedOf } from "./cached.js"
import { makeGetOrCompute, stampedeOf } from "./getOrCompute.js"
import { flatKeyWriter } from "./flatKey.js"
import {
  canonicalJson,
  deepFreeze,
  describePath,
  exceedsBytes,
  faithfulJson,
  FeatureKeys,
  type Found,
  Invalid,
  isRead,
  keyspaceHead,
  type NearSettings,
  type Read,
  ReadPipeline,
  tenantProblem,
  unfaithfulReason
} from "@effect-failclosed/core"
import { feature, increment, keyspaceMetrics, type Report } from "./observability.js"
import { durationMillis, optionChecks, ttlMillisOf } from "./options.js"
import { plainCheck } from "./plainSchema.js"
import { nowOf, roundTrip, writeThrough } from "./readThrough.js"
import type { GetOrComputeOptions, Keyspace, KeyspaceOptions, NearCacheOptions, SetOptions } from "../Keyspace.js"

/** @internal */
export const make = <K, KI, V, VI>(options: KeyspaceOptions<K, KI, V, VI>): Keyspace<K, V> => {
  const check = optionChecks("Keyspace")
  const name = check.name(options.name)
  if (!Schema.isSchema(options.key) || !Schema.isSchema(options.value)) check.invalid("key and value must be Schemas")
  const defaultTtl = ttlMillisOf(options.timeToLive)
  if (typeof defaultTtl === "string") check.invalid(defaultTtl)
  const maxValueBytes = check.positiveInteger("maxValueBytes", options.maxValueBytes, 1024 * 1024)
  const maxKeyBytes = check.positiveInteger("maxKeyBytes", options.maxKeyBytes, 8 * 1024)
  const maxTenantLength = check.positiveInteger("maxTenantLength", options.maxTenantLength, 256)
  const nearSettings =
    options.nearCache === undefined
      ? undefined
      : nearSettingsOf(check, options.nearCache, defaultTtl as number | undefined)

  // compiled once
  const encodeKey = Schema.encodeEither(options.key)
  const encodeValue = Schema.encodeEither(options.value)
  const decodeValue = Schema.decodeUnknownEither(options.value)
  // Schemas without transformations: a value of exactly the declared shape is its own encoding and decoding, and
  // Effect's parser is needed only for anything else (see internal/plainSchema)
  const isPlainKey = plainCheck(options.key)
  /** one pass instead of three for the common keys (a Struct of required strings, numbers, booleans) */
  const flatKey = flatKeyWriter(options.key)
  const isPlainValue = plainCheck(options.value)
  // JSON.parse never makes symbol keys: what it gives back needs no check for them
  const isPlainParsed = plainCheck(options.value, { symbolKeys: "ignore" })

  /** `<keyPrefix>:k:<name>:<tenant>:<key hash>`, memoised (see FeatureKeys) */
  const keys = new FeatureKeys((keyPrefix) => keyspaceHead(keyPrefix, name), "canonical")
  const keyspacePrefixOf = (cache: DistributedCacheService): string => keys.head(cache.keyPrefix)

  /** the canonical JSON of a key, or an error reason */
  const canonicalKeyOf = (key: K): string | { reason: string } => {
    const flat = flatKey === undefined ? undefined : flatKey(key)
    let canonical: string
    if (flat !== undefined) {
      canonical = flat
    } else {
      let encoded: unknown = key
      if (isPlainKey === undefined || !isPlainKey(key)) {
        const e = encodeKey(key)
        if (Either.isLeft(e)) return { reason: "key does not encode with the key Schema" }
        encoded = e.right
      }
      const unfaithful = unfaithfulReason(encoded)
      if (unfaithful !== undefined) return { reason: `key: ${unfaithful}` }
      canonical = canonicalJson(encoded)
    }
    if (exceedsBytes(canonical, maxKeyBytes)) return { reason: `key is larger than ${maxKeyBytes} bytes` }
    return canonical
  }

  /** the full store key, or what is wrong with the input */
  const storeKeyOf = (
    cache: DistributedCacheService,
    key: K,
    tenant: string | undefined
  ): string | { readonly reason: string; readonly field: InputField } => {
    const problem = tenantProblem(tenant, maxTenantLength)
    if (problem !== undefined) return { reason: problem, field: "tenant" }
    const canonical = canonicalKeyOf(key)
    return typeof canonical === "string"
      ? keys.key(cache.keyPrefix, tenant, canonical)
      : { reason: canonical.reason, field: "key" }
  }

  const invalidValue = (reason: string, field: InputField = "value") =>
    new CacheValueInvalid({ keyspace: name, reason, field })
  const invalidEntry = (reason: string) => new CacheEntryInvalid({ keyspace: name, reason })

  /** encoded JSON of a value, or the rejection */
  const encodeEntry = (value: V): Either.Either<string, CacheValueInvalid> => {
    let encoded: unknown = value
    if (isPlainValue === undefined || !isPlainValue(value)) {
      const e = encodeValue(value)
      if (Either.isLeft(e)) {
        return Either.left(invalidValue(`value does not encode with the value Schema (${issuePaths(e.left)})`))
      }
      encoded = e.right
    }
    const json = faithfulJson(encoded, maxValueBytes)
    return typeof json === "string" ? Either.right(json) : Either.left(invalidValue(json.reason))
  }

  /** the one decoder of this keyspace's entries (the read pipeline calls it): deeply frozen values, in every mode */
  const decodeEntry = (json: string): V | Invalid => {
    let parsed: unknown
    try {
      parsed = JSON.parse(json)
    } catch {
      return NOT_JSON
    }
    if (isPlainParsed !== undefined && isPlainParsed(parsed)) return deepFreeze(parsed as V)
    const decoded = decodeValue(parsed)
    return Either.isLeft(decoded)
      ? new Invalid(`the stored entry does not decode with the value Schema (${issuePaths(decoded.left)})`)
      : deepFreeze(decoded.right)
  }

  /**
   * This keyspace's reads on one cache (one per cache, made on first use): the cache's node-local memory (LocalOnly),
   * or Redis with this keyspace's near cache in front of it when it has one. With a value Schema without
   * transformations, an entry is decoded once and every hit of it shares one frozen value and one answer.
   */
  const pipelines = new WeakMap<DistributedCacheService, ReadPipeline<V, Answer<V>>>()
  let lastCache: DistributedCacheService | undefined
  let lastPipeline: ReadPipeline<V, Answer<V>> | undefined
  const pipelineOf = (cache: DistributedCacheService): ReadPipeline<V, Answer<V>> => {
    if (cache === lastCache) return lastPipeline!
    let pipeline = pipelines.get(cache)
    if (pipeline === undefined) {
      const near =
        nearSettings === undefined || cache.nearCache === undefined
          ? undefined
          : cache.nearCache({ ...nearSettings, prefix: keyspacePrefixOf(cache), keyspace: name })
      pipeline = new ReadPipeline<V, Answer<V>>({
        decode: decodeEntry,
        shareDecoded: isPlainValue !== undefined,
        local: cache.get.local,
        near
      })
      pipelines.set(cache, pipeline)
    }
    lastCache = cache
    lastPipeline = pipeline
    return pipeline
  }

  /** the answers of a value found (made once for a read that every hit of one entry shares) */
  const answerOf = (found: Found<V, Answer<V>>): Answer<V> => {
    let answer = found.memo
    if (answer === undefined) {
      const cached = cachedOf(found)
      answer = { some: Effect.succeed(Option.some(cached)), hit: Effect.succeed(cached) }
      found.memo = answer
    }
    return answer
  }

  /** the one Warning when this keyspace's near cache went off or came back, before `effect` */
  const announced = <A, E, R>(
    pipeline: ReadPipeline<V, Answer<V>>,
    effect: Effect.Effect<A, E, R>
  ): Effect.Effect<A, E, R> => {
    const note = pipeline.near?.transition()
    return note === undefined ? effect : Effect.zipRight(Effect.logWarning(note), effect)
  }

  // spans and metrics: tagged with the mode and this keyspace's name, never a key, a value or a tenant
  const observe = feature("keyspace", name)
  const metricsOf = keyspaceMetrics(name)
  type Metrics = ReturnType<typeof metricsOf>
  const hitOrMiss = (result: Option.Option<unknown>) => (Option.isSome(result) ? "hit" : "miss")

  const none = Effect.succeed(Option.none<Cached<V>>())
  /** `get`'s answer to a read */
  const toOption = (
    read: Read<V, Answer<V>>,
    metrics: Metrics,
    report: Report
  ): Effect.Effect<Option.Option<Cached<V>>, CacheEntryInvalid> => {
    if (read._tag === "Miss") {
      if (read.invalid !== undefined) return Effect.fail(invalidEntry(read.invalid.reason))
      increment(metrics.misses)
      return none
    }
    increment(metrics.hits)
    if (read.near) report.near = true
    return answerOf(read).some
  }

  const ttlFor = (options: SetOptions | undefined): number | undefined | string =>
    options?.timeToLive === undefined ? defaultTtl : ttlMillisOf(options.timeToLive)

  const get: Keyspace<K, V>["get"] = (key, options) =>
    observe(
      "get",
      (cache, report, fiber) => {
        const metrics = metricsOf(cache.mode)
        const storeKey = storeKeyOf(cache, key, options?.tenant)
        if (typeof storeKey !== "string") {
          increment(metrics.misses)
          return none
        }
        const pipeline = pipelineOf(cache)
        const now = nowOf(fiber)
        const step = pipeline.lookup(storeKey, now, false)
        const answer = isRead(step)
          ? toOption(step, metrics, report)
          : Effect.flatMap(roundTrip(pipeline, cache, storeKey, step, now, false), (read) =>
              toOption(read, metrics, report)
            )
        return pipeline.near === undefined ? answer : announced(pipeline, answer)
      },
      hitOrMiss
    )

  const set: Keyspace<K, V>["set"] = (key, value, options) =>
    observe("set", (cache): Effect.Effect<void, CacheBackendUnavailable | CacheValueInvalid> => {
      const storeKey = storeKeyOf(cache, key, options?.tenant)
      if (typeof storeKey !== "string") return Effect.fail(invalidValue(storeKey.reason, storeKey.field))
      const ttl = ttlFor(options)
      if (typeof ttl === "string") return Effect.fail(invalidValue(ttl, "timeToLive"))
      const json = encodeEntry(value)
      if (Either.isLeft(json)) return Effect.fail(json.left)
      return Effect.asVoid(
        writeThrough(pipelineOf(cache), storeKey, json.right, ttl, cache.set(storeKey, json.right, ttl), inRedis)
      )
    })

  const invalidate: Keyspace<K, V>["invalidate"] = (key, options) =>
    observe("invalidate", (cache) => {
      const storeKey = storeKeyOf(cache, key, options?.tenant)
      if (typeof storeKey !== "string") return Effect.succeed(false)
      return writeThrough(pipelineOf(cache), storeKey, undefined, undefined, cache.invalidate(storeKey), never)
    })

  const clear: Keyspace<K, V>["clear"] = (options) =>
    observe("clear", (cache): Effect.Effect<number, CacheBackendUnavailable> => {
      let prefix: string
      if (options?.allTenants === true) {
        if (options.tenant !== undefined) return Effect.dieMessage("clear: give either tenant or allTenants, not both")
        prefix = keyspacePrefixOf(cache)
      } else {
        if (tenantProblem(options?.tenant, maxTenantLength) !== undefined) return Effect.succeed(0)
        prefix = keys.partition(cache.keyPrefix, options?.tenant)
      }
      const near = pipelineOf(cache).near
      if (near === undefined) return cache.clear(prefix)
      // before the deletion is sent, and again when it answered (reads in flight meanwhile may carry deleted values)
      const drop = Effect.sync(() => near.dropPrefix(prefix))
      return Effect.zipRight(drop, Effect.ensuring(cache.clear(prefix), drop))
    })

  /** getOrCompute past a fresh local or near hit (internal/getOrCompute): every form, one path */
  const compute = makeGetOrCompute<V, Answer<V>>({ keyspace: name, encode: encodeEntry, pipelineOf })

  const getOrCompute = <E, R>(
    key: K,
    computation: Effect.Effect<V, E, R>,
    options?: GetOrComputeOptions<V>
  ): Effect.Effect<Cached<V>, E | CacheBackendUnavailable | CacheValueInvalid, DistributedCache | R> =>
    observe("getOrCompute", (cache, report, fiber) => {
      const storeKey = storeKeyOf(cache, key, options?.tenant)
      if (typeof storeKey !== "string") return Effect.fail(invalidValue(storeKey.reason, storeKey.field))
      const ttl = ttlFor(options)
      if (typeof ttl === "string") return Effect.fail(invalidValue(ttl, "timeToLive"))
      const s = stampedeOf(options)
      if (typeof s === "string") return Effect.fail(invalidValue(s, "options"))
      const metrics = metricsOf(cache.mode)
      const pipeline = pipelineOf(cache)
      const now = nowOf(fiber)
      const first = pipeline.lookup(storeKey, now, s.acceptsStale)
      if (isRead(first) && first._tag === "Found" && !first.stale) {
        // a fresh hit at hand (LocalOnly memory, or the near cache): no round trip
        increment(metrics.hits)
        report.outcome = "hit"
        if (first.near) report.near = true
        return announced(pipeline, answerOf(first).hit)
      }
      const counted = (hit: boolean) => {
        increment(hit ? metrics.hits : metrics.misses)
        report.outcome = hit ? "hit" : "miss"
      }
      return announced(
        pipeline,
        compute(cache, storeKey, ttl, computation, options?.shouldCache, s, first, now, counted)
      )
    })

  return { name, get, set, invalidate, clear, getOrCompute }
}

/** what a keyspace answers for a value found: made once per read (once per entry for a shared read) */
interface Answer<V> {
  readonly some: Effect.Effect<Option.Option<Cached<V>>>
  readonly hit: Effect.Effect<Cached<V>>
}

const NOT_JSON = new Invalid("the stored entry is not JSON")
const inRedis = (written: Cached<void>) => written.backend === "redis"
const never = () => false

const issuePaths = (error: ParseResult.ParseError): string => {
  const issues = ParseResult.ArrayFormatter.formatErrorSync(error)
  // describePath prints only printable ASCII: a hostile property name cannot forge a log line
  return `at ${issues
    .slice(0, 3)
    .map((i) => describePath(i.path))
    .join(", ")}`
}

/** the validated settings of a near cache: an invalid option throws (a programmer error) */
const nearSettingsOf = (
  check: ReturnType<typeof optionChecks>,
  options: NearCacheOptions,
  keyspaceTtl: number | undefined
): Omit<NearSettings, "prefix" | "keyspace"> => {
  if (typeof options !== "object" || options === null) check.invalid("nearCache must be an object with a capacity")
  if (options.capacity === undefined) check.invalid("nearCache.capacity is required")
  const capacity = check.positiveInteger("nearCache.capacity", options.capacity, 0)
  let timeToLiveMillis = keyspaceTtl
  if (options.timeToLive !== undefined) {
    const ttl = durationMillis("nearCache.timeToLive", options.timeToLive, "timeToLive")
    if (typeof ttl === "string") check.invalid(ttl)
    timeToLiveMillis = ttl === Infinity ? keyspaceTtl : Math.min(ttl as number, keyspaceTtl ?? Infinity)
  }
  const maxStalenessMillis = check.duration("nearCache.maxStaleness", options.maxStaleness, "timeout", "1 second")
  return { capacity, timeToLiveMillis, maxStalenessMillis }
}
