/**
 * The key codec: the one tenant check, the one canonical hash, the one layout of every Redis key the library writes,
 * and the SCAN patterns built from it. Keyspace, RateLimiter, ReplayGuard, the getOrCompute locks, Persistence and
 * KeyValueStore all build their keys here, so a key and the pattern that finds it cannot drift apart.
 *
 * Layout (0.2.0):
 *
 *   Keyspace        <prefix>:k:<name>:<tenant>:<hash>
 *   lock            <Keyspace key>~lock
 *   RateLimiter     <prefix>:{r<f|s|t>:<name>:<tenant>:<hash>}     (+ `:l`, `:m` for a sliding window)
 *   ReplayGuard     <prefix>:{g:<name>:<tenant>:<hash>}
 *   KeyValueStore   <prefix>:v:<name>:-:<hash>
 *   Persistence     <prefix>:p:<store id>:-:<hash>
 *   tag stamp       <prefix>:t:<name>:<tenant>:<tag hash>             (a Keyspace's tags: core/src/tags.ts)
 *
 * - `<prefix>` matches `[A-Za-z0-9._-]{1,64}`: no `:`.
 * - `<name>` and `<tenant>` are segments: a string of `[A-Za-z0-9._-]` is written as it is (except `-` alone),
 *   anything else as `~` + the unpadded base64url of its UTF-16LE code units. UTF-16 code units, not UTF-8: UTF-8
 *   maps every lone surrogate to U+FFFD, so two malformed ids would share a key. A written-as-is segment never starts
 *   with `~`, an encoded one always does, and both decode back to the string: the encoding is injective over every
 *   JavaScript string. Neither form holds `:`, `{`, `}` or a glob character (`*?[]\^`).
 * - `<tenant>` is `-` for no tenant (a tenant id `-` is written encoded, `~LQA`); KeyValueStore and Persistence
 *   have no tenants (a store per partition), so theirs is always `-`: one shape for every feature.
 * - `<hash>` is the SHA-256 of the canonical JSON (of the key, subject, nonce or entry key), truncated to 144 bits
 *   (18 bytes, exactly 24 base64url characters). Why 144: tenant isolation never rests on the hash (the tenant and
 *   name are in the key, injectively); the hash only separates keys of one partition. Finding two keys that share a
 *   hash takes about 2^72 SHA-256 evaluations, a preimage of a given key (another user's subject or nonce) 2^144,
 *   and the chance that any two of 2^32 live keys of one partition collide by accident is about 2^-81. 128 bits
 *   (2^64 for a collision) is within reach of a GPU farm; 192 bits would put the typical key over 48 bytes.
 * - The feature tag after `<prefix>:` (`k`, `{rf`, `{rs`, `{rt`, `{g`, `v`, `p`, `t`, each followed by `:`) is
 *   self-delimiting, and so is every segment: the layout is injective over (prefix, feature, name, tenant, key), and
 *   a partition prefix (up to and including a `:`) starts exactly the keys of that partition.
 * - Rate-limit and replay keys are Redis Cluster hash tags (`{…}`): every key a decision touches is in one slot.
 *
 * The typical key of the issue (`fc`, keyspace `profiles`, tenant `acme`, key `{ userId: 12345 }`):
 * `fc:k:profiles:acme:` + 24 characters = 43 bytes (0.1.0: 82).
 */
import * as crypto from "node:crypto"
import { canonicalJson, unfaithfulReason } from "./json.js"

/**
 * What a mode's `keyPrefix` must match: no `:`, no glob character, 1 to 64 characters.
 *
 * @example
 * ```ts
 * import { KEY_PREFIX_PATTERN } from "@effect-failclosed/core"
 *
 * KEY_PREFIX_PATTERN.test("checkout") // true
 * ```
 *
 * @since 0.2.0
 * @category key layout
 */
export const KEY_PREFIX_PATTERN = /^[A-Za-z0-9._-]{1,64}$/

/**
 * The modes' default `keyPrefix`.
 *
 * @example
 * ```ts
 * import { DEFAULT_KEY_PREFIX } from "@effect-failclosed/core"
 *
 * DEFAULT_KEY_PREFIX // "fc"
 * ```
 *
 * @since 0.2.0
 * @category key layout
 */
export const DEFAULT_KEY_PREFIX = "fc"

/** a segment written as it is */
const RAW_SEGMENT = /^[A-Za-z0-9._-]+$/

/** the tenant segment of an entry written without a tenant @internal */
export const NO_TENANT_SEGMENT = "-"

/** starts a segment written as base64url @internal */
const ENCODED_MARK = "~"

/**
 * A name or tenant id as a key segment: as it is when it holds only `[A-Za-z0-9._-]` (and is not `-`), else `~` and
 * the base64url of its UTF-16LE code units.
 * @internal
 */
export const encodeSegment = (s: string): string =>
  s !== NO_TENANT_SEGMENT && RAW_SEGMENT.test(s) ? s : ENCODED_MARK + Buffer.from(s, "utf16le").toString("base64url")

/**
 * The inverse of {@link encodeSegment} (undefined for a string no segment can be).
 * @internal
 */
export const decodeSegment = (segment: string): string | undefined => {
  if (segment.startsWith(ENCODED_MARK)) {
    const body = segment.slice(1)
    if (!/^[A-Za-z0-9_-]*$/.test(body)) return undefined
    const bytes = Buffer.from(body, "base64url")
    if (bytes.length % 2 !== 0 || bytes.toString("base64url") !== body) return undefined
    return bytes.toString("utf16le")
  }
  return segment !== NO_TENANT_SEGMENT && RAW_SEGMENT.test(segment) ? segment : undefined
}

/** `-`, or the tenant id as a segment @internal */
export const tenantSegment = (tenant: string | undefined): string =>
  tenant === undefined ? NO_TENANT_SEGMENT : encodeSegment(tenant)

/** base64url characters of a hash: 24 × 6 = 144 bits, exactly 18 bytes (see the module's comment) @internal */
export const HASH_LENGTH = 24

/**
 * The hash of a canonical JSON text (well-formed: `JSON.stringify` escapes lone surrogates, so its UTF-8 is
 * injective): SHA-256, base64url, the first 144 bits.
 * @internal
 */
export const hashCanonical: (canonical: string) => string =
  // the one-shot crypto.hash (Node >= 20.12) is about 3x cheaper than createHash().update().digest()
  typeof crypto.hash === "function"
    ? (canonical) => crypto.hash("sha256", canonical, "base64url").slice(0, HASH_LENGTH)
    : (canonical) => crypto.createHash("sha256").update(canonical).digest("base64url").slice(0, HASH_LENGTH)

/**
 * The hash of a string (a rate-limit subject, a nonce, a KeyValueStore or Persistence key): the hash of its
 * canonical JSON, its `JSON.stringify`.
 * @internal
 */
export const hashString = (s: string): string => hashCanonical(JSON.stringify(s))

/**
 * The one tenant check of every feature: why `tenant` cannot be a tenant id, or undefined when it can (undefined,
 * no tenant, is fine). The reason never contains the id, and always starts with `tenant id`.
 * @internal
 */
export const tenantProblem = (tenant: unknown, maxLength: number): string | undefined => {
  if (tenant === undefined) return undefined
  if (typeof tenant !== "string" || tenant.length === 0) return "tenant id must be a non-empty string"
  if (tenant.length > maxLength) return `tenant id is longer than ${maxLength} characters`
  return undefined
}

// --- heads: `<prefix>:<feature>:<name>:` ---------------------------------------------------------------------------

/**
 * A rate-limit algorithm's one-character tag in its keys.
 * @internal
 */
export const ALGORITHM_TAG = {
  "fixed-window": "f",
  "sliding-window": "s",
  "token-bucket": "t"
} as const

/** @internal */
export type RateLimitAlgorithmName = keyof typeof ALGORITHM_TAG

/** `<keyPrefix>:k:<name>:` @internal */
export const keyspaceHead = (keyPrefix: string, name: string): string => `${keyPrefix}:k:${encodeSegment(name)}:`

/** `<keyPrefix>:{r<algorithm tag>:<name>:` (the tag is one character) @internal */
export const rateLimiterHead = (keyPrefix: string, algorithmTag: string, name: string): string =>
  `${keyPrefix}:{r${algorithmTag}:${encodeSegment(name)}:`

/** `<keyPrefix>:{g:<name>:` @internal */
export const replayGuardHead = (keyPrefix: string, name: string): string => `${keyPrefix}:{g:${encodeSegment(name)}:`

/** `<keyPrefix>:v:<name>:` @internal */
export const keyValueStoreHead = (keyPrefix: string, name: string): string => `${keyPrefix}:v:${encodeSegment(name)}:`

/** `<keyPrefix>:p:<store id>:` @internal */
export const persistenceHead = (keyPrefix: string, storeId: string): string =>
  `${keyPrefix}:p:${encodeSegment(storeId)}:`

/** a Keyspace entry's lock is `<entry key>~lock`: in the entry's partition, and no entry's key (a hash has no `~`) @internal */
export const LOCK_SUFFIX = "~lock"

/** closes the hash tag of a rate-limit or replay key @internal */
export const HASH_TAG_END = "}"

// --- memoised keys -------------------------------------------------------------------------------------------------

/** tenant partitions memoised per key prefix (cleared when full), for tenant ids up to this length */
const TENANT_MEMO_SIZE = 1024
const MEMO_TENANT_LENGTH = 256
/** hashes memoised per feature (cleared when full), for inputs up to this length: keys and subjects recur */
const HASH_MEMO_SIZE = 4096
const MEMO_INPUT_LENGTH = 256

interface Partitions {
  readonly head: string
  readonly noTenant: string
  readonly tenants: Map<string, string>
}

/** one input's hash and the key last made from it */
interface KeyMemo {
  readonly hash: string
  /** the partition `key` was made for (compared by identity: partitions are memoised) */
  partition: string | undefined
  key: string
}

/**
 * The keys of one feature instance (one keyspace, limiter, guard or store), memoised: the partition prefix per key
 * prefix (normally one) and tenant id, the hash per input, and the last full key per input, so that a call builds
 * only its own part of a key and gets the same string for the same key every time (a Map or a Redis client then
 * spares its own hashing and flattening of it).
 *
 * `input`: `"canonical"` when the caller gives canonical JSON (a Keyspace key), `"string"` when it gives a plain
 * string whose canonical JSON is its `JSON.stringify` (subjects, nonces, store keys). `suffix` ends every key (`}`
 * for the hash-tagged features).
 * @internal
 */
export class FeatureKeys {
  private readonly byKeyPrefix = new Map<string, Partitions>()
  private lastKeyPrefix: string | undefined = undefined
  private last: Partitions | undefined = undefined
  private readonly hashes = new Map<string, KeyMemo>()
  private readonly hash: (input: string) => string

  constructor(
    private readonly headOf: (keyPrefix: string) => string,
    input: "canonical" | "string",
    private readonly suffix: string = "",
    private readonly memoHashes: boolean = true
  ) {
    this.hash = input === "canonical" ? hashCanonical : hashString
  }

  /** `<prefix>:<feature>:<name>:` */
  head(keyPrefix: string): string {
    return this.partitionsOf(keyPrefix).head
  }

  /** `<prefix>:<feature>:<name>:<tenant>:` */
  partition(keyPrefix: string, tenant: string | undefined): string {
    const p = this.partitionsOf(keyPrefix)
    if (tenant === undefined) return p.noTenant
    let t = p.tenants.get(tenant)
    if (t === undefined) {
      t = p.head + encodeSegment(tenant) + ":"
      if (tenant.length <= MEMO_TENANT_LENGTH) {
        if (p.tenants.size >= TENANT_MEMO_SIZE) p.tenants.clear()
        p.tenants.set(tenant, t)
      }
    }
    return t
  }

  /** the full key of `input` in the partition of `tenant` (the tenant already checked) */
  key(keyPrefix: string, tenant: string | undefined, input: string): string {
    const partition = this.partition(keyPrefix, tenant)
    if (!this.memoHashes) return partition + this.hash(input) + this.suffix
    let h = this.hashes.get(input)
    if (h === undefined) {
      h = { hash: this.hash(input), partition: undefined, key: "" }
      if (input.length <= MEMO_INPUT_LENGTH) {
        if (this.hashes.size >= HASH_MEMO_SIZE) this.hashes.clear()
        this.hashes.set(input, h)
      }
    }
    if (h.partition !== partition) {
      h.partition = partition
      h.key = partition + h.hash + this.suffix
    }
    return h.key
  }

  private partitionsOf(keyPrefix: string): Partitions {
    if (keyPrefix === this.lastKeyPrefix && this.last !== undefined) return this.last
    let p = this.byKeyPrefix.get(keyPrefix)
    if (p === undefined) {
      const head = this.headOf(keyPrefix)
      p = { head, noTenant: head + NO_TENANT_SEGMENT + ":", tenants: new Map() }
      this.byKeyPrefix.set(keyPrefix, p)
    }
    this.lastKeyPrefix = keyPrefix
    this.last = p
    return p
  }
}

// --- for operators: one entry's key, and the SCAN patterns ---------------------------------------------------------

/**
 * Escapes glob metacharacters for SCAN MATCH. Keys built here contain none, but the escape keeps that a local fact
 * rather than an assumption.
 * @internal
 */
export const escapeGlob = (s: string): string => s.replace(/[*?[\]\\^]/g, (c) => "\\" + c)

const usage = (where: string, reason: string): never => {
  throw new Error(`effect-failclosed: ${where}: ${reason}`)
}

const nameOf = (where: string, name: unknown, what: string): string =>
  typeof name === "string" && name.length > 0 ? name : usage(where, `${what} must be a non-empty string`)

const keyPrefixOf = (where: string, keyPrefix: string | undefined): string => {
  const p = keyPrefix ?? DEFAULT_KEY_PREFIX
  return KEY_PREFIX_PATTERN.test(p) ? p : usage(where, `keyPrefix must match ${KEY_PREFIX_PATTERN}`)
}

/**
 * One Keyspace entry, as an operator names it: the keyspace's name, the tenant (omitted or null: the entry was written
 * without one), the key as JSON text, and the mode's `keyPrefix` (default `"fc"`).
 *
 * @example
 * ```ts
 * import type { KeyspaceEntry } from "@effect-failclosed/core"
 *
 * const entry: KeyspaceEntry = { keyspace: "profiles", tenant: "acme", key: '{"userId":12345}' }
 * ```
 *
 * @since 0.2.0
 * @category key layout
 */
export interface KeyspaceEntry {
  readonly keyspace: string
  readonly tenant?: string | null | undefined
  /**
   * The key's JSON, as the key Schema encodes it (for `Schema.Struct({ userId: Schema.Number })` the key itself; for
   * a `Schema.NumberFromString` field the number is a string). Any spacing and property order: it is made canonical.
   */
  readonly key: string
  readonly keyPrefix?: string | undefined
}

/**
 * The full Redis key of one Keyspace entry (for `redis-cli GET`, `TTL`, `UNLINK`): the key JSON is parsed and made
 * canonical (properties sorted, no spacing), then hashed and placed exactly as `Keyspace` places it. Invalid input (an
 * empty name or tenant, a bad `keyPrefix`, key text that is not JSON) is a usage error: a synchronous `Error` whose
 * message says what to fix.
 *
 * @example
 * ```ts
 * import { keyspaceEntryKey } from "@effect-failclosed/core"
 *
 * // npx effect-failclosed key --keyspace profiles --tenant acme --key '{"userId":12345}'
 * keyspaceEntryKey({ keyspace: "profiles", tenant: "acme", key: '{ "userId": 12345 }' })
 * // "fc:k:profiles:acme:" + 24 characters of hash
 * ```
 *
 * @since 0.2.0
 * @category key layout
 */
export const keyspaceEntryKey = (entry: KeyspaceEntry): string => {
  const where = "keyspaceEntryKey"
  const keyPrefix = keyPrefixOf(where, entry.keyPrefix)
  const name = nameOf(where, entry.keyspace, "keyspace")
  const tenant = entry.tenant ?? undefined
  if (tenant !== undefined && (typeof tenant !== "string" || tenant.length === 0)) {
    usage(where, "tenant must be a non-empty string, null or omitted (no tenant)")
  }
  if (typeof entry.key !== "string") usage(where, "key must be JSON text")
  let parsed: unknown
  try {
    parsed = JSON.parse(entry.key)
  } catch {
    return usage(where, "key is not JSON text")
  }
  // JSON.parse gives only faithful values; the check keeps canonicalJson's precondition a local fact
  const unfaithful = unfaithfulReason(parsed)
  if (unfaithful !== undefined) usage(where, `key: ${unfaithful}`)
  return keyspaceHead(keyPrefix, name) + tenantSegment(tenant) + ":" + hashCanonical(canonicalJson(parsed))
}

/**
 * What {@link scanPattern} describes: one feature by its name (the `name` given to `Keyspace.make`,
 * `RateLimiter.make`, `ReplayGuard.make`, `KeyValueStore.layer`, or a Persistence store id), and optionally one
 * tenant. `tenant`: omitted, every entry of the feature (all tenants, and entries without one); a string, that
 * tenant's entries only; `null`, only the entries written without a tenant. `keyPrefix` is the mode's (default
 * `"fc"`). A rate limiter's `algorithm`, when omitted, matches all three.
 *
 * @example
 * ```ts
 * import type { ScanTarget } from "@effect-failclosed/core"
 *
 * const target: ScanTarget = { keyspace: "profiles", tenant: "acme", keyPrefix: "checkout" }
 * ```
 *
 * @since 0.2.0
 * @category key layout
 */
export type ScanTarget =
  | {
      readonly keyspace: string
      readonly tenant?: string | null | undefined
      readonly keyPrefix?: string | undefined
    }
  | {
      readonly rateLimiter: string
      readonly algorithm?: RateLimitAlgorithmName | undefined
      readonly tenant?: string | null | undefined
      readonly keyPrefix?: string | undefined
    }
  | {
      readonly replayGuard: string
      readonly tenant?: string | null | undefined
      readonly keyPrefix?: string | undefined
    }
  | {
      readonly keyValueStore: string
      readonly keyPrefix?: string | undefined
    }
  | {
      readonly persistence: string
      readonly keyPrefix?: string | undefined
    }

/** stands for the algorithm tag while a head is built (no name segment or prefix contains it) */
const TAG_SLOT = "\u0000"

/** the glob of the partitions below `head`: one tenant, the no-tenant entries, or all of them */
const partitions = (where: string, head: string, tenant: string | null | undefined): string => {
  if (tenant === undefined) return escapeGlob(head) + "*"
  if (tenant !== null && (typeof tenant !== "string" || tenant.length === 0)) {
    usage(where, "tenant must be a non-empty string, null (no tenant) or omitted (every tenant)")
  }
  return escapeGlob(head + tenantSegment(tenant ?? undefined) + ":") + "*"
}

/**
 * The Redis glob (for `SCAN … MATCH`, `redis-cli --scan --pattern`) that matches exactly the keys of one keyspace,
 * rate limiter, replay guard, KeyValueStore or Persistence store, or of one tenant of it: built from the same
 * functions that build the keys, glob characters escaped, so a tenant id like `a*` or `[x]` matches that tenant and
 * no other. A rate limiter's `algorithm`, omitted, matches all three (`[fst]`). An empty name or tenant, or an
 * invalid `keyPrefix`, is a usage error: a synchronous `Error`.
 *
 * @example
 * ```ts
 * import { scanPattern } from "@effect-failclosed/core"
 *
 * scanPattern({ keyspace: "profiles", tenant: "acme" }) // "fc:k:profiles:acme:*"
 * scanPattern({ rateLimiter: "login" }) // "fc:{r[fst]:login:*"
 * ```
 *
 * @since 0.2.0
 * @category key layout
 */
export const scanPattern = (target: ScanTarget): string => {
  const where = "KeyLayout.pattern"
  const keyPrefix = keyPrefixOf(where, target.keyPrefix)
  if ("keyspace" in target) {
    return partitions(where, keyspaceHead(keyPrefix, nameOf(where, target.keyspace, "keyspace")), target.tenant)
  }
  if ("rateLimiter" in target) {
    const name = nameOf(where, target.rateLimiter, "rateLimiter")
    const algorithm = target.algorithm
    if (algorithm !== undefined) {
      if (!Object.hasOwn(ALGORITHM_TAG, algorithm)) {
        usage(where, `algorithm must be "fixed-window", "sliding-window" or "token-bucket"`)
      }
      return partitions(where, rateLimiterHead(keyPrefix, ALGORITHM_TAG[algorithm], name), target.tenant)
    }
    // every algorithm: its one-character tag becomes the class `[fst]` (left unescaped, unlike the rest)
    const [before, after] = rateLimiterHead(keyPrefix, TAG_SLOT, name).split(TAG_SLOT) as [string, string]
    return escapeGlob(before) + `[${Object.values(ALGORITHM_TAG).join("")}]` + partitions(where, after, target.tenant)
  }
  if ("replayGuard" in target) {
    return partitions(
      where,
      replayGuardHead(keyPrefix, nameOf(where, target.replayGuard, "replayGuard")),
      target.tenant
    )
  }
  if ("keyValueStore" in target) {
    return escapeGlob(keyValueStoreHead(keyPrefix, nameOf(where, target.keyValueStore, "keyValueStore"))) + "*"
  }
  if ("persistence" in target) {
    return escapeGlob(persistenceHead(keyPrefix, nameOf(where, target.persistence, "persistence"))) + "*"
  }
  return usage(where, "give one of keyspace, rateLimiter, replayGuard, keyValueStore or persistence")
}
