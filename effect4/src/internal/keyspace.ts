/**
 * The body of `Keyspace.make` for Effect 4. The key of an entry comes from the core's key codec (the same string an
 * Effect 3 node builds for the same keyspace, tenant and key), every read goes through the core's read pipeline
 * (`ReadPipeline`: a sealed entry written by a `getOrCompute` with a stale window is fresh until its envelope says,
 * then a miss), and values are checked by the core's envelope (faithful JSON, one size check), so both lines read and
 * write each other's entries. A tagged entry carries the core's tag marks and is checked against the tags' stamps
 * (`<prefix>:t:…`, the keys an Effect 3 node uses), so tags and `invalidateTag` are shared by both lines. Only the
 * Schema calls and the Effects are this line's.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import {
  canonicalJson,
  deepFreeze,
  exceedsBytes,
  FeatureKeys,
  faithfulJson,
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
import { type Cached, DistributedCache, type DistributedCacheService } from "../DistributedCache.js"
import { type CacheBackendUnavailable, CacheEntryInvalid, CacheValueInvalid, type InputField } from "../errors.js"
import type { GetOrComputeOptions, Keyspace, KeyspaceOptions, SetOptions } from "../Keyspace.js"
import { makeGetOrCompute, stampedeOf, type TagsOf, type TtlOf } from "./getOrCompute.js"
import { durationMillis, optionChecks, ttlMillisOf } from "./options.js"
import { deleteStamp, fetchStamps, makeStamps, marksFor, type Stamps } from "./tagStamps.js"

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
  const near = options.nearCache
  let nearSettings: Omit<NearSettings, "prefix" | "keyspace"> | undefined
  if (near !== undefined) {
    if (typeof near !== "object" || near === null || near.capacity === undefined) {
      check.invalid("nearCache must be an object with a capacity")
    }
    const capacity = check.positiveInteger("nearCache.capacity", near.capacity, 0)
    let timeToLiveMillis = typeof defaultTtl === "number" ? defaultTtl : undefined
    if (near.timeToLive !== undefined) {
      const ttl = durationMillis("nearCache.timeToLive", near.timeToLive, "timeToLive")
      if (typeof ttl === "string") check.invalid(ttl)
      timeToLiveMillis = ttl === Infinity ? timeToLiveMillis : (ttl as number)
    }
    const maxStalenessMillis = check.duration("nearCache.maxStaleness", near.maxStaleness, "timeout", "1 second")
    nearSettings = { capacity, timeToLiveMillis, maxStalenessMillis }
  }

  // compiled once
  const encodeKey = Schema.encodeResult(options.key)
  const encodeValue = Schema.encodeResult(options.value)
  const decodeValue = Schema.decodeUnknownResult(options.value)
  const keys = new FeatureKeys((keyPrefix) => keyspaceHead(keyPrefix, name), "canonical")

  const invalidValue = (reason: string, field: InputField) => new CacheValueInvalid({ keyspace: name, reason, field })
  const invalidEntry = (reason: string) => new CacheEntryInvalid({ keyspace: name, reason })

  /** the store key of `key` for `tenant`, or why there is none (nothing is written then) */
  const storeKeyOf = (
    cache: DistributedCacheService,
    key: K,
    tenant: string | undefined
  ): string | CacheValueInvalid => {
    const problem = tenantProblem(tenant, maxTenantLength)
    if (problem !== undefined) return invalidValue(problem, "tenant")
    const encoded = encodeKey(key)
    if (Result.isFailure(encoded)) return invalidValue("key does not encode with the key Schema", "key")
    const unfaithful = unfaithfulReason(encoded.success)
    if (unfaithful !== undefined) return invalidValue(`key: ${unfaithful}`, "key")
    const canonical = canonicalJson(encoded.success)
    if (exceedsBytes(canonical, maxKeyBytes)) return invalidValue(`key is larger than ${maxKeyBytes} bytes`, "key")
    return keys.key(cache.keyPrefix, tenant, canonical)
  }

  const encodeEntry = (value: V): string | CacheValueInvalid => {
    const encoded = encodeValue(value)
    if (Result.isFailure(encoded)) return invalidValue("value does not encode with the value Schema", "value")
    const json = faithfulJson(encoded.success, maxValueBytes)
    return typeof json === "string" ? json : invalidValue(json.reason, "value")
  }

  /** the one decoder (the keyspace's Schema), as the core's pipeline calls it */
  const decodeEntry = (json: string): V | Invalid => {
    let parsed: unknown
    try {
      parsed = JSON.parse(json)
    } catch {
      return new Invalid("the stored entry is not JSON")
    }
    const decoded = decodeValue(parsed)
    return Result.isFailure(decoded)
      ? new Invalid("the stored entry does not decode with the value Schema")
      : deepFreeze(decoded.success)
  }

  /**
   * This keyspace's tag stamps on one cache (one per cache, made on first use; their near cache, and with it the
   * tracking of their prefix, only when a tagged entry is first met): `<prefix>:t:<name>:`, the keys an Effect 3 node
   * reads and writes for the same keyspace and tenant.
   */
  const stampsByCache = new WeakMap<DistributedCacheService, Stamps>()
  const stampsOf = (cache: DistributedCacheService): Stamps => {
    let stamps = stampsByCache.get(cache)
    if (stamps === undefined) {
      stamps = makeStamps(
        cache,
        name,
        keys.head(cache.keyPrefix),
        tagStampHead(cache.keyPrefix, name),
        nearSettings?.maxStalenessMillis ?? 1_000
      )
      stampsByCache.set(cache, stamps)
    }
    return stamps
  }

  /** one pipeline per cache: LocalOnly's synchronous memory read when the cache has one */
  const pipelines = new WeakMap<DistributedCacheService, ReadPipeline<V>>()
  const pipelineOf = (cache: DistributedCacheService): ReadPipeline<V> => {
    let pipeline = pipelines.get(cache)
    if (pipeline === undefined) {
      // decoded values are not shared between reads: a Schema with transformations makes a new value per decode
      pipeline = new ReadPipeline<V>({
        decode: decodeEntry,
        shareDecoded: false,
        local: cache.get.local,
        // the near cache of a Redis mode (the core's: tracking, proof, refill); LocalOnly has none
        near:
          nearSettings === undefined || cache.nearCache === undefined
            ? undefined
            : cache.nearCache({ ...nearSettings, prefix: keys.head(cache.keyPrefix), keyspace: name }),
        // a tagged entry (of either line) is checked against its tags' stamps: a missing or changed one is a miss
        tags: stampsOf(cache)
      })
      pipelines.set(cache, pipeline)
    }
    return pipeline
  }

  const cachedOf = (read: Read<V, unknown> & { readonly _tag: "Found" }): Cached<V> => ({
    value: read.value,
    backend: read.backend,
    degraded: read.degraded,
    near: read.near,
    stale: read.stale,
    age: read.ageMillis === undefined ? undefined : Duration.millis(read.ageMillis)
  })

  /**
   * One read of `storeKey` through the pipeline: answered at once (LocalOnly memory), or one round trip whose answer
   * the pipeline settles. `stale`: the caller accepts a value past its freshness.
   */
  const readOf = (
    cache: DistributedCacheService,
    storeKey: string,
    stale: boolean
  ): Effect.Effect<Read<V, unknown>, CacheBackendUnavailable> =>
    Effect.clockWith((clock) => {
      const now = () => clock.currentTimeMillisUnsafe()
      const pipeline = pipelineOf(cache)
      const step = pipeline.lookup(storeKey, now, stale)
      if (isRead(step)) return announced(pipeline, Effect.succeed(step))
      // the near cache's ticket of the round trip is given back when the read fails: a failed read fills nothing
      const failed = (error: CacheBackendUnavailable) =>
        Effect.andThen(
          Effect.sync(() => pipeline.settle(storeKey, step, undefined, now, stale)),
          Effect.fail(error)
        )
      const read = Effect.matchEffect(cache.get(storeKey), {
        onSuccess: (entry) => {
          // a tagged entry whose stamps are not all known in process: they are read first (a failure fails closed)
          const unknown = pipeline.unknownStamps(storeKey, entry.value)
          if (unknown === undefined) return Effect.succeed(pipeline.settle(storeKey, step, entry, now, stale))
          return Effect.matchEffect(fetchStamps(cache, pipeline.tags!, unknown), {
            onSuccess: (stamps) => Effect.succeed(pipeline.settle(storeKey, step, entry, now, stale, stamps)),
            onFailure: failed
          })
        },
        onFailure: failed
      })
      return announced(pipeline, read)
    })

  /** the one Warning when this keyspace's near cache went off or came back (at most one a second), before `read` */
  const announced = <A, E>(pipeline: ReadPipeline<V>, read: Effect.Effect<A, E>): Effect.Effect<A, E> => {
    const note = pipeline.near?.transition()
    return note === undefined ? read : Effect.andThen(Effect.logWarning(note), read)
  }

  /** a write through the near cache: its entry goes before the write, the written value is kept after it */
  const writeThrough = <A, E>(
    cache: DistributedCacheService,
    storeKey: string,
    json: string | undefined,
    ttl: number | undefined,
    write: Effect.Effect<A, E>,
    kept: (a: A) => boolean
  ): Effect.Effect<A, E> => {
    const pipeline = pipelineOf(cache)
    if (pipeline.near === undefined) return write
    return Effect.suspend(() => {
      const ticket = pipeline.beginWrite(storeKey)
      return Effect.onExit(write, (exit) =>
        Effect.sync(() =>
          pipeline.endWrite(storeKey, ticket, exit._tag === "Success" && kept(exit.value) ? json : undefined, ttl)
        )
      )
    })
  }

  const none = Effect.succeed(Option.none<Cached<V>>())

  const ttlFor = (options: Pick<SetOptions, "timeToLive"> | undefined): number | undefined | string =>
    options?.timeToLive === undefined ? defaultTtl : ttlMillisOf(options.timeToLive)

  const get: Keyspace<K, V>["get"] = (key, options) =>
    DistributedCache.use((cache) => {
      const storeKey = storeKeyOf(cache, key, options?.tenant)
      // a key that cannot be stored has no entry
      if (typeof storeKey !== "string") return none
      return Effect.flatMap(readOf(cache, storeKey, false), (read) =>
        read._tag === "Found"
          ? Effect.succeed(Option.some(cachedOf(read)))
          : read.invalid === undefined
            ? none
            : Effect.fail(invalidEntry(read.invalid.reason))
      )
    })

  const set: Keyspace<K, V>["set"] = (key, value, options) =>
    DistributedCache.use((cache): Effect.Effect<void, CacheBackendUnavailable | CacheValueInvalid> => {
      const storeKey = storeKeyOf(cache, key, options?.tenant)
      if (typeof storeKey !== "string") return Effect.fail(storeKey)
      const ttl = ttlFor(options)
      if (typeof ttl === "string") return Effect.fail(invalidValue(ttl, "timeToLive"))
      const json = encodeEntry(value)
      if (typeof json !== "string") return Effect.fail(json)
      const tags = options?.tags
      if (tags === undefined || tags.length === 0) return writeEntry(cache, storeKey, json, ttl)
      const problem = tagsProblem(tags)
      if (problem !== undefined) return Effect.fail(invalidValue(problem, "tags"))
      return Effect.flatMap(marksFor(cache, stampsOf(cache), storeKey, tagHashes(tags)), (marks) =>
        writeEntry(cache, storeKey, tagEntry(marks, json), ttl)
      )
    })

  /** one entry written through the near cache (kept at once when the write reached Redis) */
  const writeEntry = (cache: DistributedCacheService, storeKey: string, stored: string, ttl: number | undefined) =>
    Effect.suspend(() =>
      Effect.asVoid(writeThrough(cache, storeKey, stored, ttl, cache.set(storeKey, stored, ttl), inRedis))
    )

  const invalidateTag: Keyspace<K, V>["invalidateTag"] = (tag, options) =>
    DistributedCache.use((cache): Effect.Effect<void, CacheBackendUnavailable | CacheValueInvalid> => {
      const problem = tagsProblem([tag])
      if (problem !== undefined) return Effect.fail(invalidValue(problem.replace("tags[0]", "tag"), "tags"))
      const tenantIssue = tenantProblem(options?.tenant, maxTenantLength)
      if (tenantIssue !== undefined) return Effect.fail(invalidValue(tenantIssue, "tenant"))
      const stamps = stampsOf(cache)
      const stampKey = stamps.stampKeyOf(keys.partition(cache.keyPrefix, options?.tenant), tagHash(tag))
      return Effect.asVoid(deleteStamp(cache, stamps, stampKey))
    })

  /** what is wrong with a batch as a whole (not an array, a bad tenant id), before its elements are checked */
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
    DistributedCache.use(
      (
        cache
      ): Effect.Effect<
        ReadonlyArray<Option.Option<Cached<V>>>,
        CacheBackendUnavailable | CacheEntryInvalid | CacheValueInvalid
      > => {
        // checked before the keys too: an empty batch with a bad tenant id fails as a full one does
        const badInput = batchProblem(keys, "keys must be an array of keys", "key", options?.tenant)
        if (badInput !== undefined) return Effect.fail(badInput)
        const storeKeys: Array<string> = []
        for (let i = 0; i < keys.length; i++) {
          const storeKey = storeKeyOf(cache, keys[i]!, options?.tenant)
          if (typeof storeKey !== "string") {
            return Effect.fail(invalidValue(`keys[${i}]: ${storeKey.reason}`, storeKey.field ?? "key"))
          }
          storeKeys.push(storeKey)
        }
        return Effect.clockWith((clock) => {
          const now = () => clock.currentTimeMillisUnsafe()
          const pipeline = pipelineOf(cache)
          const reads: Array<Read<V, unknown> | undefined> = []
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
              if (read!._tag === "Found") out.push(Option.some(cachedOf(read!)))
              else if (read!.invalid === undefined) out.push(Option.none())
              else return Effect.fail(invalidEntry(read!.invalid.reason))
            }
            return Effect.succeed(out)
          }
          if (pending.length === 0) return announced(pipeline, Effect.suspend(answer))
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
        })
      }
    )

  const setMany: Keyspace<K, V>["setMany"] = (entries, options) =>
    DistributedCache.use((cache): Effect.Effect<void, CacheBackendUnavailable | CacheValueInvalid> => {
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
          return Effect.fail(invalidValue(`entries[${i}]: ${storeKey.reason}`, storeKey.field ?? "key"))
        }
        const json = encodeEntry(entry[1])
        if (typeof json !== "string") {
          return Effect.fail(invalidValue(`entries[${i}]: ${json.reason}`, json.field ?? "value"))
        }
        batch.push([storeKey, json, ttl])
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
    DistributedCache.use((cache) => {
      const storeKey = storeKeyOf(cache, key, options?.tenant)
      if (typeof storeKey !== "string") return Effect.succeed(false)
      return writeThrough(cache, storeKey, undefined, undefined, cache.invalidate(storeKey), () => false)
    })

  /** a clear drops the near entries of its partition before it is sent, and again when it answered */
  const clearThrough = (cache: DistributedCacheService, prefix: string) => {
    const near = pipelineOf(cache).near
    if (near === undefined) return cache.clear(prefix)
    const drop = Effect.sync(() => near.dropPrefix(prefix))
    return Effect.andThen(drop, Effect.ensuring(cache.clear(prefix), drop))
  }

  const clear: Keyspace<K, V>["clear"] = (options) =>
    DistributedCache.use((cache): Effect.Effect<number, CacheBackendUnavailable> => {
      if (options?.allTenants === true) {
        if (options.tenant !== undefined)
          return Effect.die(new Error("clear: give either tenant or allTenants, not both"))
        return clearThrough(cache, keys.head(cache.keyPrefix))
      }
      if (tenantProblem(options?.tenant, maxTenantLength) !== undefined) return Effect.succeed(0)
      return clearThrough(cache, keys.partition(cache.keyPrefix, options?.tenant))
    })

  const compute = makeGetOrCompute<V>({ encode: encodeEntry, read: readOf, cachedOf, writeThrough })

  const getOrCompute = <E, R>(
    key: K,
    computation: Effect.Effect<V, E, R>,
    options?: GetOrComputeOptions<V>
  ): Effect.Effect<Cached<V>, E | CacheBackendUnavailable | CacheValueInvalid, DistributedCache | R> =>
    DistributedCache.use((cache) => {
      const storeKey = storeKeyOf(cache, key, options?.tenant)
      if (typeof storeKey !== "string") return Effect.fail(storeKey)
      const timeToLive = options?.timeToLive
      const adaptiveTtl = typeof timeToLive === "function"
      const ttl = adaptiveTtl || timeToLive === undefined ? defaultTtl : ttlMillisOf(timeToLive)
      if (typeof ttl === "string") return Effect.fail(invalidValue(ttl, "timeToLive"))
      const s = stampedeOf(options)
      if (typeof s === "string") return Effect.fail(invalidValue(s, "options"))
      const tags = options?.tags
      if (tags !== undefined && typeof tags !== "function") {
        const problem = tagsProblem(tags)
        if (problem !== undefined) return Effect.fail(invalidValue(problem, "tags"))
      }
      const tagsOf = tags === undefined ? undefined : tagsOfValue(cache, storeKey, tags)
      const ttlOf = adaptiveTtl ? ttlOfValue(timeToLive) : undefined
      return compute(cache, storeKey, ttl, computation, options?.shouldCache, s, tagsOf, ttlOf)
    })

  /** the time to live a computed value decides (checked as a `timeToLive` option is) */
  const ttlOfValue =
    (timeToLive: (value: V) => Duration.Input): TtlOf<V> =>
    (value) => {
      let input: Duration.Input
      try {
        input = timeToLive(value)
      } catch {
        return invalidValue("timeToLive(value) threw", "timeToLive")
      }
      const ttl = ttlMillisOf(input)
      return typeof ttl === "string" ? invalidValue(`timeToLive(value): ${ttl}`, "timeToLive") : ttl
    }

  /** the tags a computed value is stored under (checked, then their stamps' tokens) */
  const tagsOfValue =
    (
      cache: DistributedCacheService,
      storeKey: string,
      tags: ReadonlyArray<string> | ((value: V) => ReadonlyArray<string>)
    ): TagsOf<V> =>
    (value) => {
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

  return { name, get, set, invalidate, clear, getOrCompute, getMany, setMany, invalidateTag }
}

const inRedis = (written: Cached<void>) => written.backend === "redis"
