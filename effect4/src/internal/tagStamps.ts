/**
 * The Effect 4 side of tags (`@effect-failclosed/core` `tags.ts`; the Effect 3 line's `src/internal/tagStamps.ts` is
 * the same over Effect 3): the stamps of one keyspace on one cache, read, created and deleted through the
 * `DistributedCache` service (so its mode decides what an unavailable Redis means), and, on a Redis cache, kept in the
 * core's near cache of stamps (`CLIENT TRACKING` on the stamps' prefix). The stamp keys, the tokens and their time to
 * live, the tagged entry's format and the check on read are the core's: a stamp written or deleted by a node of either line is the same key.
 */
import * as Effect from "effect/Effect"
import { makeTagStamps, newStampToken, STAMP_TTL_MILLIS, type TagMark, type TagStamps } from "@effect-failclosed/core"
import type { DistributedCacheService } from "../DistributedCache.js"
import type { CacheBackendUnavailable } from "../errors.js"

/** a keyspace's stamps on one cache: what the read pipeline asks, and the near cache of the stamps @internal */
export type Stamps = TagStamps

/**
 * The stamps of a keyspace on `cache` (the core's `makeTagStamps`, as the Effect 3 line makes them: the same stamp
 * keys, the same near cache of stamps). `entryHead` is the keyspace's key head (`<prefix>:k:<name>:`), `stampHead`
 * the stamps' (`<prefix>:t:<name>:`).
 * @internal
 */
export const makeStamps = (
  cache: DistributedCacheService,
  keyspace: string,
  entryHead: string,
  stampHead: string,
  maxStalenessMillis: number
): Stamps =>
  makeTagStamps({
    keyspace,
    entryHead,
    stampHead,
    local: cache.get.local,
    openNear: cache.nearCache,
    maxStalenessMillis
  })

/**
 * Reads stamps from the store (one MGET per Redis node, the core's batch): what each holds, null for a missing one. A
 * clean Redis answer is kept in the stamps' near cache.
 * @internal
 */
export const fetchStamps = (
  cache: DistributedCacheService,
  stamps: Stamps,
  stampKeys: ReadonlyArray<string>
): Effect.Effect<ReadonlyMap<string, string | null>, CacheBackendUnavailable> =>
  Effect.suspend(() => {
    const near = stamps.near
    const tickets = near === undefined ? undefined : stampKeys.map((k) => near.beginRead(k))
    const read = Effect.onExit(cache.getMany(stampKeys), (exit) =>
      Effect.sync(() => {
        if (near === undefined || tickets === undefined) return
        const answered = exit._tag === "Success" && exit.value.backend === "redis" ? exit.value.value : undefined
        for (let i = 0; i < stampKeys.length; i++) near.endRead(stampKeys[i]!, tickets[i]!, answered?.[i])
      })
    )
    return Effect.map(read, ({ value }) => {
      const current = new Map<string, string | null>()
      for (let i = 0; i < stampKeys.length; i++) current.set(stampKeys[i]!, value[i] ?? null)
      return current
    })
  })

/**
 * The marks a write of `entryKey` with the tags `hashes` carries: each tag's current token; a tag without a stamp
 * gets one (a new random token, `SET NX`: whoever creates it first, of either line, wins, and every writer uses it).
 * @internal
 */
export const marksFor = (
  cache: DistributedCacheService,
  stamps: Stamps,
  entryKey: string,
  hashes: ReadonlyArray<string>
): Effect.Effect<ReadonlyArray<TagMark>, CacheBackendUnavailable> =>
  Effect.suspend(() => {
    const keys = hashes.map((h) => stamps.stampKeyOf(entryKey, h))
    const tokens = keys.map((k) => stamps.known(k))
    const marks = () => hashes.map((hash, i) => ({ hash, token: tokens[i] as string }))
    const unknown = keys.filter((_, i) => typeof tokens[i] !== "string")
    if (unknown.length === 0) return Effect.succeed(marks())
    return Effect.flatMap(fetchStamps(cache, stamps, unknown), (current) =>
      Effect.map(
        Effect.forEach(
          keys,
          (key, i) => {
            if (typeof tokens[i] === "string") return Effect.void
            const token = current.get(key)
            if (typeof token === "string") {
              tokens[i] = token
              return Effect.void
            }
            return Effect.map(createStamp(cache, stamps, key), (created) => {
              tokens[i] = created
            })
          },
          { discard: true }
        ),
        marks
      )
    )
  })

/** creates a missing stamp: our token when we created it, else the one that is there (read again) */
const createStamp = (
  cache: DistributedCacheService,
  stamps: Stamps,
  stampKey: string
): Effect.Effect<string, CacheBackendUnavailable> =>
  Effect.suspend(() => {
    const token = newStampToken()
    const near = stamps.near
    const ticket = near?.beginWrite(stampKey)
    const created = Effect.onExit(cache.acquireLock(stampKey, token, STAMP_TTL_MILLIS), (exit) =>
      Effect.sync(() => {
        if (near === undefined || ticket === undefined) return
        const ours = exit._tag === "Success" && exit.value.value && exit.value.backend === "redis"
        near.endWrite(stampKey, ticket, ours ? token : undefined, STAMP_TTL_MILLIS)
      })
    )
    return Effect.flatMap(created, (taken) =>
      taken.value
        ? Effect.succeed(token)
        : // created by another writer meanwhile: theirs. Gone again already (invalidated): a token no stamp holds,
          // so the entry written with it is a miss (never a hit of an invalidated tag)
          Effect.map(cache.get(stampKey), (read) => read.value ?? newStampToken())
    )
  })

/**
 * Deletes a stamp (`invalidateTag`): every entry carrying its token becomes a miss on every node. The stamp leaves
 * this node's memory before the deletion is sent and again when it answered.
 * @internal
 */
export const deleteStamp = (
  cache: DistributedCacheService,
  stamps: Stamps,
  stampKey: string
): Effect.Effect<boolean, CacheBackendUnavailable> =>
  Effect.suspend(() => {
    const near = stamps.near
    const ticket = near?.beginWrite(stampKey)
    const deletion = cache.invalidate(stampKey)
    if (near === undefined || ticket === undefined) return deletion
    return Effect.ensuring(
      deletion,
      Effect.sync(() => near.endWrite(stampKey, ticket, undefined, undefined))
    )
  })
