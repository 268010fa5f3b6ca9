/**
 * The implementation of `Keyspace.make`: option checks, key hashing and partitions, the value codec (Schema, or the
 * plain check of a plain Schema), the near cache, and the operations over the `DistributedCache` of the caller.
 */
import * as Clock from "effect/Clock"
import type * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import type { Cached, DistributedCache, DistributedCacheService } from "../DistributedCache.js"
import { type CacheBackendUnavailable, CacheEntryInvalid, CacheValueInvalid } from "../errors.js"
import { freshOf, isSealed, makeStampede, perCache, readAt, singleFlight, stampedeOf, unseal } from "./getOrCompute.js"
import { flatKeyWriter } from "./flatKey.js"
import {
  canonicalJson,
  deepFreeze,
  describePath,
  FeatureKeys,
  keyspaceHead,
  tenantProblem,
  toFaithfulJson,
  unfaithfulReason
} from "@effect-failclosed/core"
import { failedIn, feature, increment, keyspaceMetrics, perMode } from "./observability.js"
import { durationMillis, optionChecks, ttlMillisOf } from "./options.js"
import { plainCheck } from "./plainSchema.js"
import { localReaderOf } from "./policy.js"
import { NearCache, type NearCacheSettings, type NearEntry } from "./nearCache.js"
import { trackingOf } from "./redis/tracking.js"
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

  /** this keyspace's near cache on a Redis-mode cache (one per cache), made on first use */
  const nears = new WeakMap<DistributedCacheService, NearCache | null>()
  let lastNearCache: DistributedCacheService | undefined
  let lastNear: NearCache | undefined
  const nearOf = (cache: DistributedCacheService): NearCache | undefined => {
    if (nearSettings === undefined || cache.mode === "LocalOnly") return undefined
    if (cache === lastNearCache) return lastNear
    let near = nears.get(cache)
    if (near === undefined) {
      const tracking = trackingOf(cache)
      near = tracking === undefined ? null : new NearCache(tracking, keyspacePrefixOf(cache), nearSettings, name)
      nears.set(cache, near)
    }
    lastNearCache = cache
    lastNear = near ?? undefined
    return lastNear
  }

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
    // a UTF-16 code unit is at most 3 bytes of UTF-8: most keys need no byte count
    if (canonical.length * 3 > maxKeyBytes && Buffer.byteLength(canonical, "utf8") > maxKeyBytes) {
      return { reason: `key is larger than ${maxKeyBytes} bytes` }
    }
    return canonical
  }

  /** the full store key, or an error reason */
  const storeKeyOf = (
    cache: DistributedCacheService,
    key: K,
    tenant: string | undefined
  ): string | { reason: string } => {
    const problem = tenantProblem(tenant, maxTenantLength)
    if (problem !== undefined) return { reason: problem }
    const canonical = canonicalKeyOf(key)
    return typeof canonical === "string" ? keys.key(cache.keyPrefix, tenant, canonical) : canonical
  }

  const invalidValue = (reason: string) => new CacheValueInvalid({ keyspace: name, reason })
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
    if (encoded === undefined) return Either.left(invalidValue("undefined is not representable in JSON"))
    const json = toFaithfulJson(encoded)
    if (json._tag === "err") return Either.left(invalidValue(json.reason))
    // a UTF-16 code unit is at most 3 bytes of UTF-8: most values need no byte count
    if (json.json.length * 3 > maxValueBytes && Buffer.byteLength(json.json, "utf8") > maxValueBytes) {
      return Either.left(invalidValue(`encoded value is larger than ${maxValueBytes} bytes`))
    }
    return Either.right(json.json)
  }

  const decodeEntry = (raw: string): Either.Either<V, CacheEntryInvalid> => {
    let parsed: unknown
    try {
      parsed = JSON.parse(raw)
    } catch {
      return Either.left(invalidEntry("the stored entry is not JSON"))
    }
    // what a read returns is deeply frozen, in every mode (see `get`)
    if (isPlainParsed !== undefined && isPlainParsed(parsed)) return Either.right(deepFreeze(parsed as V))
    const decoded = decodeValue(parsed)
    return Either.isLeft(decoded)
      ? Either.left(
          invalidEntry(`the stored entry does not decode with the value Schema (${issuePaths(decoded.left)})`)
        )
      : Either.right(deepFreeze(decoded.right))
  }

  // spans and metrics: tagged with the mode and this keyspace's name, never a key, a value or a tenant
  const observe = feature("keyspace", name)
  const metricsOf = keyspaceMetrics(name)
  /** `toOption` with a mode's metrics, made once per mode */
  const toOptionOf = perMode((mode) => {
    const metrics = metricsOf(mode)
    return (entry: Cached<string | undefined>) => toOption(entry, metrics)
  })
  type Metrics = ReturnType<typeof metricsOf>
  const hitOrMiss = (result: Option.Option<unknown>) => (Option.isSome(result) ? "hit" : "miss")

  const none = Effect.succeed(Option.none<Cached<V>>())
  const toOption = (
    entry: Cached<string | undefined>,
    metrics: Metrics
  ): Effect.Effect<Option.Option<Cached<V>>, CacheEntryInvalid> => {
    if (entry.value === undefined) {
      increment(metrics.misses)
      return none
    }
    if (isSealed(entry.value)) return sealedOption(entry as Cached<string>, metrics)
    const decoded = decodeEntry(entry.value)
    if (Either.isLeft(decoded)) return Effect.fail(decoded.left)
    increment(metrics.hits)
    return Effect.succeed(
      Option.some({ value: decoded.right, backend: entry.backend, degraded: entry.degraded, near: false, stale: false })
    )
  }
  /** `get` of an entry sealed with its freshness (see internal/getOrCompute): past its time to live, a miss */
  const sealedOption = (
    entry: Cached<string>,
    metrics: Metrics
  ): Effect.Effect<Option.Option<Cached<V>>, CacheEntryInvalid> =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => {
      const envelope = unseal(entry.value)
      if (envelope === undefined) return Effect.fail(invalidEntry("the stored entry's envelope is corrupt"))
      const decoded = decodeEntry(envelope.json)
      if (Either.isLeft(decoded)) return Effect.fail(decoded.left)
      if (now >= envelope.freshUntil) {
        increment(metrics.misses)
        return none
      }
      increment(metrics.hits)
      return Effect.succeed(Option.some(freshOf(entry, decoded.right, envelope, now)))
    })

  /**
   * LocalOnly reads. With a plain value Schema, an entry is decoded once: the decoded value is deeply frozen (the
   * Schema's Type is readonly already; freezing makes that hold at run time too), kept next to the entry for as long
   * as the entry lives, and every read of the entry returns it. Other Schemas decode on every read.
   */
  const readsByEntry = new WeakMap<Cached<string>, LocalRead<V>>()
  /** the read of a live LocalOnly entry, or its CacheEntryInvalid */
  const localRead = (entry: Cached<string>): LocalRead<V> | CacheEntryInvalid => {
    let read = readsByEntry.get(entry)
    if (read === undefined) {
      const decoded = decodeEntry(entry.value)
      if (Either.isLeft(decoded)) return decoded.left
      const cached: Cached<V> = { value: decoded.right, backend: "local", degraded: false, near: false, stale: false }
      read = { cached, some: Effect.succeed(Option.some(cached)), hit: Effect.succeed(cached) }
      readsByEntry.set(entry, read)
    }
    return read
  }
  const readLocal = (
    entry: Cached<string> | undefined,
    metrics: Metrics
  ): Effect.Effect<Option.Option<Cached<V>>, CacheEntryInvalid> => {
    if (entry === undefined) {
      increment(metrics.misses)
      return none
    }
    if (isSealed(entry.value)) return sealedOption(entry, metrics)
    const read = localRead(entry)
    if (read instanceof CacheEntryInvalid) return Effect.fail(read)
    increment(metrics.hits)
    return read.some
  }

  /**
   * What a near entry answers: with a plain value Schema, decoded once, deeply frozen and shared by every hit (one
   * caller cannot corrupt what another reads); other Schemas decode on every hit.
   */
  const nearRead = (entry: NearEntry): LocalRead<V> | CacheEntryInvalid => {
    if (entry.decoded !== undefined) return entry.decoded as LocalRead<V>
    const decoded = decodeEntry(entry.json)
    if (Either.isLeft(decoded)) return decoded.left
    const plain = isPlainValue !== undefined
    // decodeEntry returns a deeply frozen value (in every mode)
    const cached: Cached<V> = {
      value: decoded.right,
      backend: "redis",
      degraded: false,
      near: true,
      stale: false
    }
    const read = { cached, some: Effect.succeed(Option.some(cached)), hit: Effect.succeed(cached) }
    if (plain) entry.decoded = read
    return read
  }

  /** the one Warning when this keyspace's near cache was switched off by lost coherence, and the one when it is back */
  const announce = (near: NearCache): Effect.Effect<void> | undefined => {
    const on = near.tracking.on
    if (near.announced === on) return undefined
    const before = near.announced
    near.announced = on
    if (before === undefined) {
      if (!on) near.announced = undefined
      return undefined
    }
    return on
      ? Effect.logWarning(`effect-failclosed: the near cache of keyspace "${name}" serves again (coherence proven)`)
      : Effect.logWarning(
          `effect-failclosed: the near cache of keyspace "${name}" is switched off and emptied (${near.tracking.reason}); reads go to Redis`
        )
  }
  const announced = <A, E>(near: NearCache, effect: Effect.Effect<A, E>): Effect.Effect<A, E> => {
    const log = announce(near)
    return log === undefined ? effect : Effect.zipRight(log, effect)
  }

  /** a read through the near cache: a hit, or Redis (a clean Redis answer fills the near cache) */
  const nearGet = (
    cache: DistributedCacheService,
    near: NearCache,
    storeKey: string,
    metrics: Metrics
  ): Effect.Effect<Option.Option<Cached<V>>, CacheBackendUnavailable | CacheEntryInvalid> => {
    const entry = near.lookup(storeKey)
    if (entry !== undefined) {
      const read = nearRead(entry)
      if (!(read instanceof CacheEntryInvalid)) {
        increment(metrics.hits)
        near.hit()
        return announced(near, read.some)
      }
    }
    near.miss()
    return announced(
      near,
      Effect.suspend(() => {
        const ticket = near.beginRead(storeKey)
        return Effect.matchEffect(cache.get(storeKey), {
          onFailure: (error) => {
            near.endRead(storeKey, ticket, undefined)
            return Effect.fail(error)
          },
          onSuccess: (entry) => {
            if (entry.value === undefined || entry.backend !== "redis") {
              near.endRead(storeKey, ticket, entry.backend === "redis" ? null : undefined)
              return toOption(entry, metrics)
            }
            if (isSealed(entry.value)) {
              // an entry getOrCompute wrote with a stale window (internal/getOrCompute) carries its freshness:
              // it is answered from Redis by its own rules and not kept near
              near.endRead(storeKey, ticket, undefined)
              return toOption(entry, metrics)
            }
            const decoded = decodeEntry(entry.value)
            if (Either.isLeft(decoded)) {
              near.endRead(storeKey, ticket, undefined)
              return Effect.fail(decoded.left)
            }
            increment(metrics.hits)
            const stored = near.endRead(storeKey, ticket, entry.value)
            const value = decoded.right
            if (stored !== undefined && isPlainValue !== undefined) {
              // the near entry and this caller share one value (decodeEntry froze it)
              const near: Cached<V> = { value, backend: "redis", degraded: false, near: true, stale: false }
              stored.decoded = { cached: near, some: Effect.succeed(Option.some(near)), hit: Effect.succeed(near) }
            }
            return Effect.succeed(Option.some({ value, backend: "redis", degraded: false, near: false, stale: false }))
          }
        })
      })
    )
  }

  /** a write (a set with its JSON, or an invalidate) through the near cache: see internal/nearCache */
  const nearWrite = <A, E>(
    near: NearCache,
    storeKey: string,
    json: string | undefined,
    ttl: number | undefined,
    write: Effect.Effect<A, E>,
    wroteRedis: (a: A) => boolean
  ): Effect.Effect<A, E> =>
    Effect.suspend(() => {
      const ticket = near.beginWrite(storeKey)
      return Effect.onExit(write, (exit) =>
        Effect.sync(() => {
          near.endWrite(storeKey, ticket, exit._tag === "Success" && wroteRedis(exit.value) ? json : undefined, ttl)
        })
      )
    })
  const inRedis = (written: Cached<void>) => written.backend === "redis"

  const ttlFor = (options: SetOptions | undefined): number | undefined | string =>
    options?.timeToLive === undefined ? defaultTtl : ttlMillisOf(options.timeToLive)

  const get: Keyspace<K, V>["get"] = (key, options) =>
    observe(
      "get",
      (cache) => {
        const metrics = metricsOf(cache.mode)
        const storeKey = storeKeyOf(cache, key, options?.tenant)
        if (typeof storeKey !== "string") {
          increment(metrics.misses)
          return none
        }
        const local = isPlainValue === undefined ? undefined : localReaderOf(cache)
        if (local !== undefined) return readLocal(local(storeKey), metrics)
        const near = nearOf(cache)
        if (near !== undefined) return nearGet(cache, near, storeKey, metrics)
        return Effect.flatMap(cache.get(storeKey), toOptionOf(cache.mode))
      },
      hitOrMiss
    )

  const set: Keyspace<K, V>["set"] = (key, value, options) =>
    observe("set", (cache): Effect.Effect<void, CacheBackendUnavailable | CacheValueInvalid> => {
      const storeKey = storeKeyOf(cache, key, options?.tenant)
      if (typeof storeKey !== "string") return Effect.fail(invalidValue(storeKey.reason))
      const ttl = ttlFor(options)
      if (typeof ttl === "string") return Effect.fail(invalidValue(ttl))
      const json = encodeEntry(value)
      if (Either.isLeft(json)) return Effect.fail(json.left)
      const near = nearOf(cache)
      if (near !== undefined) {
        return Effect.asVoid(nearWrite(near, storeKey, json.right, ttl, cache.set(storeKey, json.right, ttl), inRedis))
      }
      return Effect.asVoid(cache.set(storeKey, json.right, ttl))
    })

  const invalidate: Keyspace<K, V>["invalidate"] = (key, options) =>
    observe("invalidate", (cache) => {
      const storeKey = storeKeyOf(cache, key, options?.tenant)
      if (typeof storeKey !== "string") return Effect.succeed(false)
      const near = nearOf(cache)
      if (near !== undefined) {
        return nearWrite(near, storeKey, undefined, undefined, cache.invalidate(storeKey), () => false)
      }
      return cache.invalidate(storeKey)
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
      const near = nearOf(cache)
      if (near === undefined) return cache.clear(prefix)
      // before the deletion is sent, and again when it answered (reads in flight meanwhile may carry deleted values)
      const drop = Effect.sync(() => near.dropPrefix(prefix))
      return Effect.zipRight(drop, Effect.ensuring(cache.clear(prefix), drop))
    })

  /**
   * single flight: one computation per cache and store key in this process (two caches, e.g. two Layers with the
   * same key prefix, never share a computation: each stores and marks its own result)
   */
  const inflightOf = perCache(() => new Map<string, Deferred.Deferred<Cached<V>, unknown>>())

  /**
   * A hit, or the miss (a corrupt entry counts as a miss and is recomputed) with the marks of the backend that
   * answered it.
   */
  const toLookup = (entry: Cached<string | undefined>): Lookup<V> => {
    if (entry.value !== undefined) {
      const decoded = decodeEntry(entry.value)
      if (Either.isRight(decoded)) {
        return {
          hit: true,
          cached: { value: decoded.right, backend: entry.backend, degraded: entry.degraded, near: false, stale: false }
        }
      }
    }
    return { hit: false, backend: entry.backend, degraded: entry.degraded }
  }
  /** the lookup of an entry sealed with its freshness: past its time to live, a miss */
  const sealedLookup = (entry: Cached<string | undefined>): Effect.Effect<Lookup<V>> =>
    Effect.map(Clock.currentTimeMillis, (now) => {
      const read = readAt(decodeEntry, entry, now)
      return read._tag === "Fresh"
        ? { hit: true, cached: read.cached }
        : { hit: false, backend: read.backend, degraded: read.degraded }
    })
  /** getOrCompute's read and write: a failure names getOrCompute, the operation the caller made */
  const inGetOrCompute = failedIn("getOrCompute")
  const readFor = (cache: DistributedCacheService, storeKey: string) => {
    const near = nearOf(cache)
    return Effect.mapError(
      near === undefined ? cache.get(storeKey) : readThroughNear(near, storeKey, cache.get(storeKey)),
      inGetOrCompute
    )
  }
  /**
   * getOrCompute's Redis read of a near-cache keyspace: like `get`'s, a clean answer fills the near cache (an entry
   * sealed with its freshness is answered by its own rules and not kept near). Decoded on its first near hit.
   */
  const readThroughNear = (
    near: NearCache,
    storeKey: string,
    read: Effect.Effect<Cached<string | undefined>, CacheBackendUnavailable>
  ) =>
    Effect.suspend(() => {
      const ticket = near.beginRead(storeKey)
      return Effect.onExit(read, (exit) =>
        Effect.sync(() => {
          const entry = Exit.isSuccess(exit) && exit.value.backend === "redis" ? exit.value : undefined
          const value = entry?.value
          near.endRead(
            storeKey,
            ticket,
            entry === undefined ? undefined : value === undefined ? null : isSealed(value) ? undefined : value
          )
        })
      )
    })
  const lookupOf = (cache: DistributedCacheService, storeKey: string) =>
    Effect.flatMap(readFor(cache, storeKey), (entry) =>
      entry.value !== undefined && isSealed(entry.value) ? sealedLookup(entry) : Effect.succeed(toLookup(entry))
    )

  /** stores a computed value (unless `shouldCache` declines it) and marks it with the backend that took it */
  const storeComputed = (
    cache: DistributedCacheService,
    storeKey: string,
    ttl: number | undefined,
    options: GetOrComputeOptions<V> | undefined,
    value: V,
    miss: Miss
  ): Effect.Effect<Cached<V>, CacheBackendUnavailable | CacheValueInvalid> => {
    if (options?.shouldCache !== undefined && !options.shouldCache(value)) {
      // not stored: marked like the miss it answers (degraded while a fallback served the lookup)
      return Effect.succeed({ value, backend: miss.backend, degraded: miss.degraded, near: false, stale: false })
    }
    const json = encodeEntry(value)
    if (Either.isLeft(json)) return Effect.fail(json.left)
    const near = nearOf(cache)
    // a near-cache keyspace keeps what it stored, as `set` does (read-your-writes with no round trip)
    const write =
      near === undefined
        ? cache.set(storeKey, json.right, ttl)
        : nearWrite(near, storeKey, json.right, ttl, cache.set(storeKey, json.right, ttl), inRedis)
    return Effect.map(Effect.mapError(write, inGetOrCompute), (written) => ({
      value,
      backend: written.backend,
      degraded: written.degraded,
      near: false,
      stale: false
    }))
  }

  /** after a miss: joins the computation of this key in progress, or leads one (made only on a miss) */
  const leadOf = <E, R>(
    cache: DistributedCacheService,
    storeKey: string,
    ttl: number | undefined,
    compute: Effect.Effect<V, E, R>,
    options: GetOrComputeOptions<V> | undefined
  ): Effect.Effect<Cached<V>, E | CacheBackendUnavailable | CacheValueInvalid, R> =>
    singleFlight(
      inflightOf(cache),
      storeKey,
      // the leader re-reads: a previous leader may have stored the value meanwhile
      Effect.flatMap(lookupOf(cache, storeKey), (entry) =>
        entry.hit
          ? Effect.succeed(entry.cached)
          : Effect.flatMap(compute, (value) => storeComputed(cache, storeKey, ttl, options, value, entry))
      )
    )

  /** getOrCompute with `lock`, `staleWhileRevalidate` or `staleIfError` (internal/getOrCompute) */
  const stampede = makeStampede<V>({ keyspace: name, decode: decodeEntry, encode: encodeEntry, inflightOf })

  /** the plain path's answer to an entry sealed with its freshness (written with a stale window) */
  const answerSealed = <E, R>(
    cache: DistributedCacheService,
    storeKey: string,
    ttl: number | undefined,
    compute: Effect.Effect<V, E, R>,
    options: GetOrComputeOptions<V> | undefined,
    read: Cached<string | undefined>,
    metrics: Metrics,
    report: { outcome?: string | undefined }
  ) =>
    Effect.flatMap(sealedLookup(read), (entry) => {
      increment(entry.hit ? metrics.hits : metrics.misses)
      report.outcome = entry.hit ? "hit" : "miss"
      return entry.hit ? Effect.succeed(entry.cached) : leadOf(cache, storeKey, ttl, compute, options)
    })

  const getOrCompute = <E, R>(
    key: K,
    compute: Effect.Effect<V, E, R>,
    options?: GetOrComputeOptions<V>
  ): Effect.Effect<Cached<V>, E | CacheBackendUnavailable | CacheValueInvalid, DistributedCache | R> =>
    observe("getOrCompute", (cache, report) => {
      const storeKey = storeKeyOf(cache, key, options?.tenant)
      if (typeof storeKey !== "string") return Effect.fail(invalidValue(storeKey.reason))
      const ttl = ttlFor(options)
      if (typeof ttl === "string") return Effect.fail(invalidValue(ttl))
      const metrics = metricsOf(cache.mode)
      const s = stampedeOf(options)
      if (s !== undefined) {
        if (typeof s === "string") return Effect.fail(invalidValue(s))
        return stampede(cache, storeKey, ttl, compute, options?.shouldCache, s, (hit) => {
          increment(hit ? metrics.hits : metrics.misses)
          report.outcome = hit ? "hit" : "miss"
        })
      }
      const local = isPlainValue === undefined ? undefined : localReaderOf(cache)
      if (local !== undefined) {
        const entry = local(storeKey)
        if (entry !== undefined && isSealed(entry.value)) {
          return answerSealed(cache, storeKey, ttl, compute, options, entry, metrics, report)
        }
        const read = entry === undefined ? undefined : localRead(entry)
        if (read !== undefined && !(read instanceof CacheEntryInvalid)) {
          increment(metrics.hits)
          report.outcome = "hit"
          return read.hit
        }
        // a miss (a corrupt entry counts as one): the leader reads again and computes
        increment(metrics.misses)
        report.outcome = "miss"
        return leadOf(cache, storeKey, ttl, compute, options)
      }
      const near = nearOf(cache)
      const nearEntry = near?.lookup(storeKey)
      if (nearEntry !== undefined) {
        const read = nearRead(nearEntry)
        if (!(read instanceof CacheEntryInvalid)) {
          increment(metrics.hits)
          near!.hit()
          report.outcome = "hit"
          return read.hit
        }
      }
      return Effect.flatMap(readFor(cache, storeKey), (read) => {
        if (read.value !== undefined && isSealed(read.value)) {
          return answerSealed(cache, storeKey, ttl, compute, options, read, metrics, report)
        }
        const entry = toLookup(read)
        increment(entry.hit ? metrics.hits : metrics.misses)
        report.outcome = entry.hit ? "hit" : "miss"
        return entry.hit ? Effect.succeed(entry.cached) : leadOf(cache, storeKey, ttl, compute, options)
      })
    })

  return { name, get, set, invalidate, clear, getOrCompute }
}

interface Miss {
  readonly hit: false
  readonly backend: Cached<unknown>["backend"]
  readonly degraded: boolean
}

type Lookup<V> = { readonly hit: true; readonly cached: Cached<V> } | Miss

/** what every read of one LocalOnly entry returns (see `readsByEntry`) */
interface LocalRead<V> {
  readonly cached: Cached<V>
  readonly some: Effect.Effect<Option.Option<Cached<V>>>
  readonly hit: Effect.Effect<Cached<V>>
}

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
): NearCacheSettings => {
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
