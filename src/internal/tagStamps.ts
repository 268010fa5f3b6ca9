/**
 * The Effect side of tags (`@effect-failclosed/core` `tags.ts`, docs/tags-and-batches.md): the stamps of one
 * keyspace on one cache, read, created and deleted through the `DistributedCache` service (so its mode decides what
 * an unavailable Redis means), and, on a Redis cache with invalidation connections, kept in a near cache of their own
 * (`CLIENT TRACKING` on the stamps' prefix): a stamp deleted by any node leaves every node's memory when the
 * invalidation arrives, and none is answered from memory while coherence is not proven.
 */
import * as Effect from "effect/Effect"
import { makeTagStamps, newStampToken, STAMP_TTL_MILLIS, type TagMark, type TagStamps } from "@effect-failclosed/core"
import type { DistributedCacheService } from "../DistributedCache.js"
import type { CacheBackendUnavailable } from "../errors.js"

/** a keyspace's stamps on one cache: what the read pipeline asks, and the near cache of the stamps @internal */
export type Stamps = TagStamps

/**
 * The stamps of a keyspace on `cache` (the core's `makeTagStamps`: stamp keys and what is known in process).
 * `entryHead` is the keyspace's key head (`<prefix>:k:<name>:`), `stampHead` the stamps' (`<prefix>:t:<name>:`).
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
 * Reads stamps from the store (one MGET per Redis node): what each holds, null for a missing one. A clean Redis
 * answer is kept in the stamps' near cache.
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
    return Effect.onExit(cache.getMany(stampKeys), (exit) =>
      Effect.sync(() => {
        if (near === undefined || tickets === undefined) return
        const answered = exit._tag === "Success" && exit.value.backend === "redis" ? exit.value.value : undefined
        for (let i = 0; i < stampKeys.length; i++) near.endRead(stampKeys[i]!, tickets[i]!, answered?.[i])
      })
    ).pipe(
      Effect.map((read) => {
        const current = new Map<string, string | null>()
        for (let i = 0; i < stampKeys.length; i++) current.set(stampKeys[i]!, read.value[i] ?? null)
        return current
      })
    )
  })

/**
 * The marks a write of `entryKey` with the tags `hashes` carries: each tag's current token; a tag without a stamp
 * gets one (a new random token, `SET NX`: whoever creates it first wins, and every writer uses the winner's).
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
    const unknown = keys.filter((_, i) => tokens[i] === undefined || tokens[i] === null)
    const marks = () => hashes.map((hash, i) => ({ hash, token: tokens[i] as string }))
    if (unknown.length === 0) return Effect.succeed(marks())
    return Effect.flatMap(fetchStamps(cache, stamps, unknown), (current) =>
      Effect.as(
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
        undefined
      ).pipe(Effect.map(marks))
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
    return Effect.onExit(cache.acquireLock(stampKey, token, STAMP_TTL_MILLIS), (exit) =>
      Effect.sync(() => {
        if (near === undefined || ticket === undefined) return
        const ours = exit._tag === "Success" && exit.value.value && exit.value.backend === "redis"
        near.endWrite(stampKey, ticket, ours ? token : undefined, STAMP_TTL_MILLIS)
      })
    ).pipe(
      Effect.flatMap((taken) =>
        taken.value
          ? Effect.succeed(token)
          : // created by another writer meanwhile: theirs. Gone again already (invalidated): a token of our own that
            // no stamp holds, so the entry written with it is a miss (never a hit of an invalidated tag)
            Effect.map(cache.get(stampKey), (read) => read.value ?? newStampToken())
      )
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
