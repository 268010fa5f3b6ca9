/**
 * The key layout and entry envelope as the `effect-failclosed` command uses them, in one place: the key of one
 * Keyspace entry and the SCAN glob of a feature (the core's own functions, which the library builds its keys with),
 * what a key is (which feature, name and tenant: read from the core's feature tags and segments), and the envelope of
 * an entry sealed with its freshness. Nothing else of the command knows the layout.
 */
import { ALGORITHM_TAG, decodeSegment, HASH_LENGTH, NO_TENANT_SEGMENT } from "@effect-failclosed/core"

/** the key of one Keyspace entry, and the SCAN glob of a feature (or one tenant of it); a usage error throws */
export { keyspaceEntryKey, type KeyspaceEntry, type ScanTarget, scanPattern } from "@effect-failclosed/core"

/** the envelope of an entry written with a stale window (`~1:<writtenAt>:<freshUntil>:<json>`) */
export { isSealed, unseal } from "@effect-failclosed/core"

/** a tagged entry (`#1:<tag hash>.<token>,…\n<entry>`): its tag marks, then the entry as stored untagged */
export { isTagged, readTagged } from "@effect-failclosed/core"

/** what a key is, read from its shape */
export type KeyKind =
  | {
      readonly feature: "keyspace"
      readonly name: string
      readonly tenant: string | null
      /** the key of a getOrCompute lock on the entry */
      readonly lock: boolean
    }
  | {
      readonly feature: "rateLimiter"
      readonly name: string
      readonly tenant: string | null
      readonly algorithm: keyof typeof ALGORITHM_TAG
      /** a sliding window's log (`:l`) or meta hash (`:m`); undefined: the key of the decision itself */
      readonly part: "log" | "meta" | undefined
    }
  | { readonly feature: "replayGuard"; readonly name: string; readonly tenant: string | null }
  /** the stamp of one tag of a keyspace (`<prefix>:t:<keyspace>:<tenant>:<tag hash>`, see the core's tags.ts) */
  | { readonly feature: "tagStamp"; readonly name: string; readonly tenant: string | null }
  | { readonly feature: "keyValueStore" | "persistence"; readonly name: string }

/** a name or tenant segment: as it is (`[A-Za-z0-9._-]`), or `~` + base64url of its UTF-16LE code units */
const SEGMENT = "~?[A-Za-z0-9._-]+|~"
const HASH = `[A-Za-z0-9_-]{${HASH_LENGTH}}`
const ALGORITHMS = Object.fromEntries(Object.entries(ALGORITHM_TAG).map(([a, tag]) => [tag, a])) as Record<
  string,
  keyof typeof ALGORITHM_TAG
>

const RATE_LIMITER = new RegExp(`^[^:]+:\\{r([fst]):(${SEGMENT}):(${SEGMENT}):${HASH}\\}(:l|:m)?$`)
const REPLAY_GUARD = new RegExp(`^[^:]+:\\{g:(${SEGMENT}):(${SEGMENT}):${HASH}\\}$`)
const STORE = new RegExp(`^[^:]+:(v|p):(${SEGMENT}):`)
const TAG_STAMP = new RegExp(`^[^:]+:t:(${SEGMENT}):(${SEGMENT}):${HASH}$`)
const KEYSPACE = new RegExp(`^[^:]+:k:(${SEGMENT}):(${SEGMENT}):${HASH}(~lock)?$`)

/** a segment's string; undefined for a malformed one (then the key is not one of the library's) */
const nameOf = (segment: string): string | undefined => decodeSegment(segment)
const tenantOf = (segment: string): string | null | undefined =>
  segment === NO_TENANT_SEGMENT ? null : decodeSegment(segment)

/** the feature, name and tenant a key of the library's belongs to; undefined for any other key */
export const describeKey = (key: string): KeyKind | undefined => {
  let m = RATE_LIMITER.exec(key)
  if (m !== null) {
    const name = nameOf(m[2]!)
    const tenant = tenantOf(m[3]!)
    if (name === undefined || tenant === undefined) return undefined
    const part = m[4] === ":l" ? "log" : m[4] === ":m" ? "meta" : undefined
    return { feature: "rateLimiter", algorithm: ALGORITHMS[m[1]!]!, name, tenant, part }
  }
  m = REPLAY_GUARD.exec(key)
  if (m !== null) {
    const name = nameOf(m[1]!)
    const tenant = tenantOf(m[2]!)
    return name === undefined || tenant === undefined ? undefined : { feature: "replayGuard", name, tenant }
  }
  m = STORE.exec(key)
  if (m !== null) {
    const name = nameOf(m[2]!)
    return name === undefined ? undefined : { feature: m[1] === "v" ? "keyValueStore" : "persistence", name }
  }
  m = TAG_STAMP.exec(key)
  if (m !== null) {
    const name = nameOf(m[1]!)
    const tenant = tenantOf(m[2]!)
    return name === undefined || tenant === undefined ? undefined : { feature: "tagStamp", name, tenant }
  }
  m = KEYSPACE.exec(key)
  if (m !== null) {
    const name = nameOf(m[1]!)
    const tenant = tenantOf(m[2]!)
    if (name === undefined || tenant === undefined) return undefined
    return { feature: "keyspace", name, tenant, lock: m[3] !== undefined }
  }
  return undefined
}
