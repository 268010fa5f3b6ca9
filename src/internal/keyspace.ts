/**
 * The implementation of `Keyspace.make`: option checks, key hashing and partitions, the value codec (Schema, or the
 * plain check of a plain Schema), the near cache, and the operations over the `DistributedCache` of the caller.
 */
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import type { Cached, DistributedCache, DistributedCacheService } from "../DistributedCache.js"
import { type CacheBackendUnavailable, CacheEntryInvalid, CacheValueInvalid, type InputField } from "../errors.js"
import { cachedOf } from "./cached.js"
import { type Adaptive, makeGetOrCompute, stampedeOf } from "./getOrCompute.js"
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
  type Pending,
  type Read,
  ReadPipeline,
  storeEntriesOf,
  type StoreEntry,
  tagEntry,
  tagHash,
  tagHashes,
  tagsProblem,
  tagStampHead,
  tenantProblem,
  unfaithfulReason
} from "@effect-failclosed/core"
import { feature, increment, keyspaceMetrics, type Report } from "./observability.js"
import { durationMillis, optionChecks, ttlMillisOf } from "./options.js"
import { plainCheck } from "./plainSchema.js"
import { nowOf, roundTrip, writeThrough } from "./readThrough.js"
import { deleteStamp, fetchStamps, makeStamps, marksFor, type Stamps } from "./tagStamps.js"
import type {
  GetOrComputeOptions,
  Keyspace,
  KeyspaceOptions,
  NearCacheOptions,
  SetManyOptions,
  SetOptions
} from "../Keyspace.js"

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
   * This keyspace's tag stamps on one cache (one per cache, made on first use; their near cache, and with it the
   * tracking of their prefix, only when a tagged entry is first met): `<prefix>:t:<name>:`.
   */
  const stampsByCache = new WeakMap<DistributedCacheService, Stamps>()
  const stampsOf = (cache: DistributedCacheService): Stamps => {
    let stamps = stampsByCache.get(cache)
    if (stamps === undefined) {
      const entryHead = keyspacePrefixOf(cache)
      const stampHead = tagStampHead(cache.keyPrefix, name)
      stamps = makeStamps(cache, name, entryHead, stampHead, nearSettings?.maxStalenessMillis ?? 1_000)
      stampsByCache.set(cache, stamps)
    }
    return stamps
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
        near,
        tags: stampsOf(cache)
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

  const ttlFor = (options: SetOptions | SetManyOptions | undefined): number | undefined | string =>
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
      const tags = options?.tags
      if (tags === undefined || tags.length === 0) return writeEntry(cache, storeKey, json.right, ttl)
      const problem = tagsProblem(tags)
      if (problem !== undefined) return Effect.fail(invalidValue(problem, "tags"))
      return Effect.flatMap(marksFor(cache, stampsOf(cache), storeKey, tagHashes(tags)), (marks) =>
        writeEntry(cache, storeKey, tagEntry(marks, json.right), ttl)
      )
    })

  /** one entry written through the pipeline (its near cache keeps an own write at once) */
  const writeEntry = (cache: DistributedCacheService, storeKey: string, stored: string, ttl: number | undefined) =>
    Effect.suspend(() =>
      Effect.asVoid(writeThrough(pipelineOf(cache), storeKey, stored, ttl, cache.set(storeKey, stored, ttl), inRedis))
    )

  const invalidateTag: Keyspace<K, V>["invalidateTag"] = (tag, options) =>
    observe("invalidateTag", (cache): Effect.Effect<void, CacheBackendUnavailable | CacheValueInvalid> => {
      const problem = tagsProblem([tag])
      if (problem !== undefined) return Effect.fail(invalidValue(problem.replace("tags[0]", "tag"), "tags"))
      const tenantIssue = tenantProblem(options?.tenant, maxTenantLength)
      if (tenantIssue !== undefined) return Effect.fail(invalidValue(tenantIssue, "tenant"))
      const stamps = stampsOf(cache)
      const stampKey = stamps.stampKeyOf(keys.partition(cache.keyPrefix, options?.tenant), tagHash(tag))
      return Effect.asVoid(deleteStamp(cache, stamps, stampKey))
    })

  /** what is wrong with a batch as a whole (not an array, a bad tenant id), before its elements are looked at */
  const batchProblem = (
    batch: unknown,
    notAnArray: string,
    field: InputField,
    tenant: string | undefined
  ): CacheValueInvalid | undefined => {
    if (!Array.isArray(batch)) return invalidValue(notAnArray, field)
    const problem = tenantProblem(tenant, maxTenantLength)
    return problem === undefined ? undefined : invalidValue(problem, "tenant")
  }

  const getMany: Keyspace<K, V>["getMany"] = (keys, options) =>
    observe(
      "getMany",
      (
        cache,
        report,
        fiber
      ): Effect.Effect<
        ReadonlyArray<Option.Option<Cached<V>>>,
        CacheBackendUnavailable | CacheEntryInvalid | CacheValueInvalid
      > => {
        const metrics = metricsOf(cache.mode)
        // checked before the keys too: an empty batch with a bad tenant id fails as a full one does
        const badInput = batchProblem(keys, "keys must be an array of keys", "key", options?.tenant)
        if (badInput !== undefined) return Effect.fail(badInput)
        const storeKeys: Array<string> = []
        for (let i = 0; i < keys.length; i++) {
          const storeKey = storeKeyOf(cache, keys[i]!, options?.tenant)
          if (typeof storeKey !== "string")
            return Effect.fail(invalidValue(`keys[${i}]: ${storeKey.reason}`, storeKey.field))
          storeKeys.push(storeKey)
        }
        const pipeline = pipelineOf(cache)
        const now = nowOf(fiber)
        const reads: Array<Read<V, Answer<V>> | undefined> = []
        const pending: Array<number> = []
        const steps: Array<Pending> = []
        for (let i = 0; i < storeKeys.length; i++) {
          const step = pipeline.lookup(storeKeys[i]!, now, false)
          if (isRead(step)) reads.push(step)
          else {
            reads.push(undefined)
            pending.push(i)
            steps.push(step)
          }
        }
        const answer = (): Effect.Effect<ReadonlyArray<Option.Option<Cached<V>>>, CacheEntryInvalid> => {
          const out: Array<Option.Option<Cached<V>>> = []
          for (const read of reads) {
            if (read!._tag === "Miss") {
              if (read!.invalid !== undefined) return Effect.fail(invalidEntry(read!.invalid.reason))
              increment(metrics.misses)
              out.push(Option.none())
            } else {
              increment(metrics.hits)
              if (read!.near) report.near = true
              out.push(Option.some(cachedOf(read as Found<V, Answer<V>>)))
            }
          }
          return Effect.succeed(out)
        }
        if (pending.length === 0) return announced(pipeline, answer())
        const pendingKeys = pending.map((i) => storeKeys[i]!)
        let settled = false
        /** every read in flight ends (a near cache's tickets are released whatever happens) */
        const settleAll = (
          entries: ReadonlyArray<StoreEntry> | undefined,
          stamps?: ReadonlyMap<string, string | null>
        ) => {
          settled = true
          for (let j = 0; j < pending.length; j++) {
            const i = pending[j]!
            reads[i] = pipeline.settle(storeKeys[i]!, steps[j]!, entries?.[j], now, false, stamps)
          }
        }
        const batch = Effect.flatMap(
          cache.getMany(pendingKeys),
          (read): Effect.Effect<void, CacheBackendUnavailable> => {
            const entries = storeEntriesOf(read.value, read.backend, read.degraded)
            // the stamps of the tagged entries that are not known in process: one more MGET for all of them
            const unknown = pipeline.unknownStampsOfBatch(pendingKeys, entries)
            if (unknown === undefined) return Effect.sync(() => settleAll(entries))
            return Effect.map(fetchStamps(cache, stampsOf(cache), unknown), (stamps) => settleAll(entries, stamps))
          }
        )
        return announced(
          pipeline,
          Effect.flatMap(
            Effect.onExit(batch, () =>
              Effect.sync(() => {
                if (!settled) settleAll(undefined)
              })
            ),
            answer
          )
        )
      }
    )

  const setMany: Keyspace<K, V>["setMany"] = (entries, options) =>
    observe("setMany", (cache): Effect.Effect<void, CacheBackendUnavailable | CacheValueInvalid> => {
      const badInput = batchProblem(
        entries,
        "entries must be an array of [key, value] pairs",
        "options",
        options?.tenant
      )
      if (badInput !== undefined) return Effect.fail(badInput)
      const ttl = ttlFor(options)
      if (typeof ttl === "string") return Effect.fail(invalidValue(ttl, "timeToLive"))
      const batch: Array<readonly [string, string, number | undefined]> = []
      for (let i = 0; i < entries.length; i++) {
        const entry = entries[i]
        if (!Array.isArray(entry) || entry.length !== 2) {
          return Effect.fail(invalidValue(`entries[${i}] must be a [key, value] pair`, "options"))
        }
        const storeKey = storeKeyOf(cache, entry[0], options?.tenant)
        if (typeof storeKey !== "string") {
          return Effect.fail(invalidValue(`entries[${i}]: ${storeKey.reason}`, storeKey.field))
        }
        const json = encodeEntry(entry[1])
        if (Either.isLeft(json)) {
          return Effect.fail(invalidValue(`entries[${i}]: ${json.left.reason}`, json.left.field ?? "value"))
        }
        batch.push([storeKey, json.right, ttl])
      }
      if (batch.length === 0) return Effect.void
      const pipeline = pipelineOf(cache)
      return Effect.suspend(() => {
        const tickets = batch.map(([storeKey]) => pipeline.beginWrite(storeKey))
        return Effect.asVoid(
          Effect.onExit(cache.setMany(batch), (exit) =>
            Effect.sync(() => {
              const wrote = exit._tag === "Success" && exit.value.backend === "redis"
              for (let i = 0; i < batch.length; i++) {
                const [storeKey, json, ttlMillis] = batch[i]!
                pipeline.endWrite(storeKey, tickets[i], wrote ? json : undefined, ttlMillis)
              }
            })
          )
        )
      })
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
      const timeToLive = options?.timeToLive
      const adaptiveTtl = typeof timeToLive === "function"
      const ttl = adaptiveTtl || timeToLive === undefined ? defaultTtl : ttlMillisOf(timeToLive)
      if (typeof ttl === "string") return Effect.fail(invalidValue(ttl, "timeToLive"))
      const tags = options?.tags
      if (tags !== undefined && typeof tags !== "function") {
        const problem = tagsProblem(tags)
        if (problem !== undefined) return Effect.fail(invalidValue(problem, "tags"))
      }
      const adaptive =
        adaptiveTtl || tags !== undefined
          ? adaptiveOf(
              cache,
              storeKey,
              adaptiveTtl ? (timeToLive as (value: V) => Duration.DurationInput) : undefined,
              tags
            )
          : undefined
      const s = stampedeOf(options)
      if (typeof s === "string") return Effect.fail(invalidValue(s, "options"))
      const metrics = metricsOf(cache.mode)
      const pipeline = pipelineOf(cache)
      const now = nowOf(fiber)
      const first = pipeline.lookup(storeKey, now, s.acceptsStale)
      if (isRead(first) && first._tag === "Found" && !first.stale && s.refreshAhead === 0) {
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
        compute(cache, storeKey, ttl, computation, options?.shouldCache, s, first, now, counted, adaptive)
      )
    })

  /** what a computed value decides of its entry: its time to live, its tags (checked, then their stamps' tokens) */
  const adaptiveOf = (
    cache: DistributedCacheService,
    storeKey: string,
    ttlOf: ((value: V) => Duration.DurationInput) | undefined,
    tags: ReadonlyArray<string> | ((value: V) => ReadonlyArray<string>) | undefined
  ): Adaptive<V> => ({
    ttlOf:
      ttlOf === undefined
        ? undefined
        : (value) => {
            let input: Duration.DurationInput
            try {
              input = ttlOf(value)
            } catch {
              return invalidValue("timeToLive(value) threw", "timeToLive")
            }
            const ttl = ttlMillisOf(input)
            return typeof ttl === "string" ? invalidValue(`timeToLive(value): ${ttl}`, "timeToLive") : ttl
          },
    tagsOf:
      tags === undefined
        ? undefined
        : (value) => {
            let list: ReadonlyArray<string>
            try {
              list = typeof tags === "function" ? tags(value) : tags
            } catch {
              return Effect.fail(invalidValue("tags(value) threw", "tags"))
            }
            const problem = tagsProblem(list)
            if (problem !== undefined) return Effect.fail(invalidValue(problem, "tags"))
            if (list.length === 0) return Effect.succeed(undefined)
            return Effect.map(
              marksFor(cache, stampsOf(cache), storeKey, tagHashes(list)),
              (marks) => (stored: string) => tagEntry(marks, stored)
            )
          }
  })

  return { name, get, set, invalidate, clear, getOrCompute, getMany, setMany, invalidateTag }
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
