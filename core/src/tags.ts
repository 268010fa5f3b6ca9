/**
 * Tags as lazy stamps checked on read (docs/tags-and-batches.md has the design and its measurements).
 *
 * - A **stamp** is one Redis key per (keyspace, tenant, tag), `<prefix>:t:<keyspace>:<tenant>:<tag hash>`, holding a
 *   random 128-bit token. `t` is a feature tag of its own: no entry, lock or other feature's key starts with it.
 * - A **tagged entry** is `#1:<hash>.<token>,<hash>.<token>\n<entry>`: the hash and the token of each of its tags as
 *   they were when it was written, then the entry as it would be stored untagged. `#` cannot start JSON (nor the
 *   `~` of a sealed entry), so an untagged entry is read as before.
 * - An entry is **valid** when every tag's stamp exists and holds the token the entry carries; anything else is a
 *   miss (fail closed). `invalidateTag` deletes the stamp; a write of a tag without a stamp creates one with a new
 *   random token. Tokens are random: a stamp deleted and created again never matches an older entry, whatever the
 *   clocks of the nodes say; an entry written after an invalidation carries the new token and is visible.
 *
 * Nothing here talks to Redis: the wrappers (one per Effect line) read and write the stamps through their store, and
 * keep the stamps they read in the tracked near cache that {@link makeTagStamps} opens.
 */
import * as crypto from "node:crypto"
import { encodeSegment, hashString } from "./keys.js"
import type { Near, NearSettings, TagStamps } from "./readPipeline.js"

/** the feature tag of stamp keys, after `<prefix>:` @internal */
export const STAMP_FEATURE = "t"

/**
 * The head of a keyspace's tag stamps, `<keyPrefix>:t:<name>:` (then `<tenant>:<tag hash>`, as an entry's partition).
 * @internal
 */
export const tagStampHead = (keyPrefix: string, name: string): string =>
  `${keyPrefix}:${STAMP_FEATURE}:${encodeSegment(name)}:`

/** at most this many tags per entry */
export const MAX_TAGS = 64
/** a tag is at most this many characters */
export const MAX_TAG_LENGTH = 1024

/** the head of a tagged entry */
const TAGGED_HEAD = "#1:"
const TAGGED_MARK = 35 // "#"

/**
 * The hash of a tag in its stamp key: the key codec's hash of a string (SHA-256 of its JSON text, base64url, the first
 * 144 bits), as for a rate-limit subject or a nonce.
 *
 * @example
 * ```ts
 * import { tagHash } from "@effect-failclosed/core"
 *
 * tagHash("org:7").length // 24
 * ```
 *
 * @since 0.2.0
 * @category tags
 */
export const tagHash = (tag: string): string => hashString(tag)

/**
 * A new stamp token: 128 random bits, base64url (22 characters).
 *
 * @example
 * ```ts
 * import { newStampToken } from "@effect-failclosed/core"
 *
 * newStampToken() !== newStampToken() // true
 * ```
 *
 * @since 0.2.0
 * @category tags
 */
export const newStampToken = (): string => crypto.randomBytes(16).toString("base64url")

/**
 * Why `tags` cannot be the tags of an entry (an array of 0 to 64 non-empty strings of at most 1024 characters), or
 * undefined when it can. The reason never holds a tag.
 *
 * @example
 * ```ts
 * import { tagsProblem } from "@effect-failclosed/core"
 *
 * tagsProblem(["org:7"]) // undefined
 * tagsProblem([""]) // "tags[0] must be a non-empty string"
 * ```
 *
 * @since 0.2.0
 * @category tags
 */
export const tagsProblem = (tags: unknown): string | undefined => {
  if (!Array.isArray(tags)) return "tags must be an array of strings"
  if (tags.length > MAX_TAGS) return `tags: at most ${MAX_TAGS} tags per entry`
  for (let i = 0; i < tags.length; i++) {
    const tag: unknown = tags[i]
    if (typeof tag !== "string" || tag.length === 0) return `tags[${i}] must be a non-empty string`
    if (tag.length > MAX_TAG_LENGTH) return `tags[${i}] is longer than ${MAX_TAG_LENGTH} characters`
  }
  return undefined
}

/** the hashes of distinct tags, in the order of their first appearance @internal */
export const tagHashes = (tags: ReadonlyArray<string>): Array<string> => Array.from(new Set(tags.map(tagHash)))

/**
 * One tag of a tagged entry: the hash of the tag and the token its stamp held when the entry was written.
 * @since 0.2.0
 * @category tags
 */
export interface TagMark {
  readonly hash: string
  readonly token: string
}

/**
 * A tagged entry's stored text: its tag marks, then the entry.
 *
 * @example
 * ```ts
 * import { readTagged, tagEntry } from "@effect-failclosed/core"
 *
 * const raw = tagEntry([{ hash: "h", token: "t" }], '{"a":1}')
 * readTagged(raw)?.entry // '{"a":1}'
 * ```
 *
 * @since 0.2.0
 * @category tags
 */
export const tagEntry = (marks: ReadonlyArray<TagMark>, entry: string): string => {
  let head = TAGGED_HEAD
  for (let i = 0; i < marks.length; i++) head += (i === 0 ? "" : ",") + marks[i]!.hash + "." + marks[i]!.token
  return head + "\n" + entry
}

/**
 * True when a stored entry is tagged.
 * @since 0.2.0
 * @category tags
 */
export const isTagged = (raw: string): boolean => raw.charCodeAt(0) === TAGGED_MARK

/**
 * A tagged entry read: its marks and the entry under them.
 * @since 0.2.0
 * @category tags
 */
export interface Tagged {
  readonly marks: ReadonlyArray<TagMark>
  readonly entry: string
}

/**
 * The marks and the entry of a tagged entry, or undefined when it is corrupt.
 * @since 0.2.0
 * @category tags
 */
export const readTagged = (raw: string): Tagged | undefined => {
  if (!raw.startsWith(TAGGED_HEAD)) return undefined
  const newline = raw.indexOf("\n")
  if (newline < 0) return undefined
  const head = raw.slice(TAGGED_HEAD.length, newline)
  const marks: Array<TagMark> = []
  if (head.length > 0) {
    for (const part of head.split(",")) {
      const dot = part.indexOf(".")
      if (dot <= 0 || dot === part.length - 1) return undefined
      marks.push({ hash: part.slice(0, dot), token: part.slice(dot + 1) })
    }
  }
  return { marks, entry: raw.slice(newline + 1) }
}

/**
 * What the stamps say of an entry's marks: `valid` (every stamp holds the entry's token), `invalid` (a stamp is
 * missing or holds another token: the entry is a miss), or `unknown` (some stamp is not known in process; `current`
 * answered undefined for it: read it from the store).
 *
 * @example
 * ```ts
 * import { checkMarks } from "@effect-failclosed/core"
 *
 * checkMarks([{ hash: "h", token: "t" }], () => "t") // "valid"
 * checkMarks([{ hash: "h", token: "t" }], () => null) // "invalid"
 * ```
 *
 * @since 0.2.0
 * @category tags
 */
export const checkMarks = (
  marks: ReadonlyArray<TagMark>,
  current: (hash: string) => string | null | undefined
): "valid" | "invalid" | "unknown" => {
  let unknown = false
  for (let i = 0; i < marks.length; i++) {
    const token = current(marks[i]!.hash)
    if (token === undefined) unknown = true
    else if (token !== marks[i]!.token) return "invalid"
  }
  return unknown ? "unknown" : "valid"
}

/**
 * How long a stamp lives after it was created (both Effect lines create stamps with it). A stamp that expires (or is
 * evicted) makes its entries misses, never hits: the next write of the tag creates a new random token. Bounds the
 * memory of tags that are used once.
 *
 * @example
 * ```ts
 * import { STAMP_TTL_MILLIS } from "@effect-failclosed/core"
 *
 * STAMP_TTL_MILLIS / 86_400_000 // 30 (days)
 * ```
 *
 * @since 0.2.0
 * @category tags
 */
export const STAMP_TTL_MILLIS = 30 * 24 * 60 * 60 * 1000

/** stamps kept in process per keyspace and cache */
const STAMP_CAPACITY = 10_000

/**
 * Where a keyspace's stamps live on one cache: its synchronous memory read (LocalOnly), or the opener of a near cache
 * (a Redis mode), and the heads of the keyspace's entries (`<prefix>:k:<name>:`) and stamps (`<prefix>:t:<name>:`).
 *
 * @since 0.2.0
 * @category tags
 */
export interface StampPlace {
  readonly keyspace: string
  readonly entryHead: string
  readonly stampHead: string
  /** LocalOnly: the memory store's synchronous read, the truth of the stamps */
  readonly local?: ((key: string) => { readonly value: string } | undefined) | undefined
  /** a Redis mode: opens a tracked near cache (absent: stamps are never known in process) */
  readonly openNear?: ((settings: NearSettings) => Near<unknown>) | undefined
  /** the keyspace near cache's bound, used for the stamps' near cache too */
  readonly maxStalenessMillis: number
}

/**
 * A keyspace's stamps on one cache, as the read pipeline asks them (`ReadPipeline`'s `tags`): the stamp key of an
 * entry's tag (in the entry's tenant partition under the stamps' head) and what is known of it in process. On a
 * Redis cache their near cache (`CLIENT TRACKING` on the stamps' prefix) is opened when a tagged entry is first met:
 * a stamp deleted by any node of either Effect line leaves every node's memory when the invalidation arrives.
 *
 * @example
 * ```ts
 * import { makeTagStamps } from "@effect-failclosed/core"
 *
 * const stamps = makeTagStamps({ keyspace: "users", entryHead: "app:k:users:", stampHead: "app:t:users:", maxStalenessMillis: 1000 })
 * stamps.stampKeyOf("app:k:users:acme:key", "h") // "app:t:users:acme:h"
 * ```
 *
 * @since 0.2.0
 * @category tags
 */
export const makeTagStamps = (place: StampPlace): TagStamps => {
  const { entryHead, local, openNear, stampHead } = place
  let near: Near<unknown> | undefined
  /** the stamps' near cache, opened (with the tracking of its prefix) when first needed */
  const nearOf = (): Near<unknown> | undefined => {
    if (near === undefined && local === undefined && openNear !== undefined) {
      near = openNear({
        prefix: stampHead,
        keyspace: `${place.keyspace} (tag stamps)`,
        capacity: STAMP_CAPACITY,
        timeToLiveMillis: undefined,
        maxStalenessMillis: place.maxStalenessMillis
      })
    }
    return near
  }
  /** entry partition → stamp partition (one string per partition) */
  const partitions = new Map<string, string>()
  const stampKeyOf = (entryKey: string, hash: string): string => {
    const entryPartition = entryKey.slice(0, entryKey.lastIndexOf(":") + 1)
    let partition = partitions.get(entryPartition)
    if (partition === undefined) {
      partition = stampHead + entryPartition.slice(entryHead.length)
      if (partitions.size >= STAMP_CAPACITY) partitions.clear()
      partitions.set(entryPartition, partition)
    }
    return partition + hash
  }
  const known =
    local !== undefined
      ? // LocalOnly: the memory store is the truth, read synchronously
        (stampKey: string) => local(stampKey)?.value ?? null
      : openNear === undefined
        ? () => undefined
        : (stampKey: string) => (near ?? nearOf())!.lookup(stampKey)?.json
  /** same tracking connections and maxStaleness as the keyspace's near cache: its hit proved them in this step */
  const knownNear =
    local !== undefined || openNear === undefined
      ? undefined
      : (stampKey: string) => {
          const n = near ?? nearOf()!
          return n.peek === undefined ? n.lookup(stampKey)?.json : n.peek(stampKey)?.json
        }
  return {
    stampKeyOf,
    known,
    knownNear,
    get near() {
      return nearOf()
    }
  }
}
