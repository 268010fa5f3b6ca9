/**
 * The key layout and entry envelope as the `effect-failclosed` command uses them, in one place: the key of one
 * Keyspace entry, the SCAN glob of a feature, what a key is (which feature, name and tenant), and the envelope of an
 * entry sealed with its freshness. Built here on the code the library writes its keys and entries with
 * (`internal/keys.ts`, `internal/keyLayout.ts`, `KeyLayout.pattern`, `internal/getOrCompute.ts`); when
 * `@effect-failclosed/core` exports the layout (`keyspaceEntryKey`, `scanPattern`), the first two become a
 * re-export of the core's and `describeKey` follows the core's feature tags. Nothing else of the command knows the
 * layout.
 */
import { pattern, type Target } from "../KeyLayout.js"
import { canonicalJson, unfaithfulReason } from "../internal/json.js"
import { ALGORITHM_TAG, keyspaceHead } from "../internal/keyLayout.js"
import { hashKey, NO_TENANT_SEGMENT, PREFIX_PATTERN, tenantSegment } from "../internal/keys.js"

/** the envelope of an entry written with a stale window (`~1:<writtenAt>:<freshUntil>:<json>`) */
export { isSealed, unseal } from "../internal/getOrCompute.js"

/** one Keyspace entry as an operator names it (the core's `KeyspaceEntry`) */
export interface KeyspaceEntry {
  readonly keyspace: string
  /** omitted or null: the entry was written without a tenant */
  readonly tenant?: string | null | undefined
  /** the key's JSON as the key Schema encodes it; any spacing and property order */
  readonly key: string
  readonly keyPrefix?: string | undefined
}

/** the SCAN target of `pattern` (the core's `ScanTarget`) */
export type ScanTarget = Target

const usage = (reason: string): never => {
  throw new Error(`effect-failclosed: ${reason}`)
}

/** the Redis key of one Keyspace entry: what `Keyspace.set(key, value, { tenant })` writes; a usage error throws */
export const keyspaceEntryKey = (entry: KeyspaceEntry): string => {
  const keyPrefix = entry.keyPrefix ?? "fc"
  if (!PREFIX_PATTERN.test(keyPrefix)) usage(`keyPrefix must match ${PREFIX_PATTERN}`)
  if (typeof entry.keyspace !== "string" || entry.keyspace.length === 0) usage("keyspace must be a non-empty string")
  const tenant = entry.tenant ?? undefined
  if (tenant !== undefined && (typeof tenant !== "string" || tenant.length === 0)) {
    usage("tenant must be a non-empty string, or omitted (no tenant)")
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(entry.key)
  } catch {
    return usage("key is not JSON text")
  }
  const unfaithful = unfaithfulReason(parsed)
  if (unfaithful !== undefined) usage(`key: ${unfaithful}`)
  return keyspaceHead(keyPrefix, entry.keyspace) + tenantSegment(tenant) + ":" + hashKey(canonicalJson(parsed))
}

/** the SCAN glob of a feature, or of one tenant of it; a usage error throws */
export const scanPattern = (target: ScanTarget): string => pattern(target)

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
  | { readonly feature: "keyValueStore" | "persistence"; readonly name: string }

const SEGMENT = "[A-Za-z0-9_-]*"
const decode = (segment: string): string => Buffer.from(segment, "base64url").toString("utf16le")
const tenantOf = (segment: string): string | null => (segment === NO_TENANT_SEGMENT ? null : decode(segment.slice(1)))
const TENANT = `(-|t${SEGMENT})`
const ALGORITHMS = Object.fromEntries(Object.entries(ALGORITHM_TAG).map(([a, tag]) => [tag, a])) as Record<
  string,
  keyof typeof ALGORITHM_TAG
>

const RATE_LIMITER = new RegExp(`^[^:]+:\\{rl:([fst]):(${SEGMENT}):${TENANT}:${SEGMENT}\\}(:l|:m)?$`)
const REPLAY_GUARD = new RegExp(`^[^:]+:\\{rg:(${SEGMENT}):${TENANT}:${SEGMENT}\\}$`)
const STORE = new RegExp(`^[^:]+:~(kv|ps):(${SEGMENT}):`)
const KEYSPACE = new RegExp(`^[^:]+:(${SEGMENT}):${TENANT}:${SEGMENT}(~lock)?$`)

/** the feature, name and tenant a key of the library's belongs to; undefined for any other key */
export const describeKey = (key: string): KeyKind | undefined => {
  let m = RATE_LIMITER.exec(key)
  if (m !== null) {
    return {
      feature: "rateLimiter",
      algorithm: ALGORITHMS[m[1]!]!,
      name: decode(m[2]!),
      tenant: tenantOf(m[3]!),
      part: m[4] === ":l" ? "log" : m[4] === ":m" ? "meta" : undefined
    }
  }
  m = REPLAY_GUARD.exec(key)
  if (m !== null) return { feature: "replayGuard", name: decode(m[1]!), tenant: tenantOf(m[2]!) }
  m = STORE.exec(key)
  if (m !== null) return { feature: m[1] === "kv" ? "keyValueStore" : "persistence", name: decode(m[2]!) }
  m = KEYSPACE.exec(key)
  if (m !== null) return { feature: "keyspace", name: decode(m[1]!), tenant: tenantOf(m[2]!), lock: m[3] !== undefined }
  return undefined
}
