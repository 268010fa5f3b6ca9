/**
 * Where the library keeps things in Redis, for operators: `pattern` gives the `SCAN … MATCH` /
 * `redis-cli --scan --pattern` glob of a keyspace, a tenant of it, a rate limiter, a replay guard
 * or a `KeyValueStore`, built by the same code that builds the keys.
 *
 * Every key starts with the mode's `keyPrefix` (default `"fc"`). Names and tenant ids are
 * base64url-encoded (unpadded) UTF-16LE code units, so no segment contains `:` or a glob
 * character whatever the id holds; the tenant segment is `-` for an entry without a tenant and
 * `t` followed by the encoded id otherwise; keys, subjects and nonces are stored only as
 * base64url SHA-256 hashes:
 *
 * | feature         | Redis key                                                    |
 * | --------------- | ------------------------------------------------------------ |
 * | `Keyspace`      | `<prefix>:<name>:<tenant>:<SHA-256 of the key's canonical JSON>` |
 * | `RateLimiter`   | `<prefix>:{rl:<f, s or t>:<name>:<tenant>:<SHA-256 of the subject>…` |
 * | `ReplayGuard`   | `<prefix>:{rg:<name>:<tenant>:<SHA-256 of the nonce>}`       |
 * | `KeyValueStore` | `<prefix>:~kv:<name>:<SHA-256 of the key's JSON>`            |
 *
 * @since 0.1.0
 */
import type { RateLimitAlgorithm } from "./DistributedCache.js"
import {
  ALGORITHM_TAG,
  keyspaceHead,
  keyValueStoreHead,
  rateLimiterHead,
  replayGuardHead
} from "./internal/keyLayout.js"
import { escapeGlob, PREFIX_PATTERN, tenantSegment } from "./internal/keys.js"

/**
 * What `pattern` describes: one feature by its name (the `name` given to `Keyspace.make`,
 * `RateLimiter.make`, `ReplayGuard.make` or `KeyValueStore.layer`), and optionally one tenant.
 *
 * `tenant`: omitted, every entry of the feature (all tenants, and entries without one); a string,
 * that tenant's entries only; `null`, only the entries written without a tenant. `keyPrefix` is
 * the mode's (default `"fc"`). A rate limiter's `algorithm`, when omitted, matches all three.
 *
 * @example
 * ```ts
 * import type { KeyLayout } from "effect-failclosed"
 *
 * const target: KeyLayout.Target = { keyspace: "profiles", tenant: "acme", keyPrefix: "checkout" }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type Target =
  | {
      readonly keyspace: string
      readonly tenant?: string | null | undefined
      readonly keyPrefix?: string | undefined
    }
  | {
      readonly rateLimiter: string
      readonly algorithm?: RateLimitAlgorithm | undefined
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

const DEFAULT_PREFIX = "fc"

/** stands for the algorithm tag while a head is built (no name segment or prefix contains it) */
const TAG_SLOT = "\u0000"

const invalid = (reason: string): never => {
  throw new Error(`effect-failclosed: KeyLayout.pattern: ${reason}`)
}

const nameOf = (name: unknown, what: string): string =>
  typeof name === "string" && name.length > 0 ? name : invalid(`${what} must be a non-empty string`)

const prefixOf = (target: Target): string => {
  const p = target.keyPrefix ?? DEFAULT_PREFIX
  return PREFIX_PATTERN.test(p) ? p : invalid(`keyPrefix must match ${PREFIX_PATTERN}`)
}

/** the glob of the partitions below `head`: one tenant, the no-tenant entries, or all of them */
const partitions = (head: string, tenant: string | null | undefined): string => {
  if (tenant === undefined) return escapeGlob(head) + "*"
  if (tenant !== null && (typeof tenant !== "string" || tenant.length === 0)) {
    invalid("tenant must be a non-empty string, null (no tenant) or omitted (every tenant)")
  }
  return escapeGlob(head + tenantSegment(tenant ?? undefined) + ":") + "*"
}

/**
 * The Redis glob (for `SCAN … MATCH`, `redis-cli --scan --pattern`) that matches exactly the keys
 * of one keyspace, rate limiter, replay guard or `KeyValueStore`, or of one tenant of it: built
 * from the same functions that build the keys, with glob characters escaped, so a tenant id like
 * `a*` or `[x]` matches that tenant and no other. A rate limiter's `algorithm`, omitted, matches
 * all three (`[fst]`). An empty name or tenant, or an invalid
 * `keyPrefix`, is a programmer error: a synchronous `Error`.
 *
 * Use it to look, not to delete: `Keyspace.clear({ tenant })` removes a tenant's entries (with
 * `SCAN` in batches), and rate-limit counters and replay claims are security state.
 *
 * @example
 * ```ts
 * import * as KeyLayout from "effect-failclosed/KeyLayout"
 *
 * // redis-cli --scan --pattern 'fc:cAByAG8AZgBpAGwAZQBzAA:tYQBjAG0AZQA:*'
 * console.log(KeyLayout.pattern({ keyspace: "profiles", tenant: "acme" }))
 * console.log(KeyLayout.pattern({ rateLimiter: "login", tenant: "acme" }))
 * console.log(KeyLayout.pattern({ replayGuard: "webhooks" })) // every tenant
 * ```
 *
 * @since 0.1.0
 * @category patterns
 */
export const pattern = (target: Target): string => {
  const keyPrefix = prefixOf(target)
  if ("keyspace" in target) {
    return partitions(keyspaceHead(keyPrefix, nameOf(target.keyspace, "keyspace")), target.tenant)
  }
  if ("rateLimiter" in target) {
    const name = nameOf(target.rateLimiter, "rateLimiter")
    const algorithm = target.algorithm
    if (algorithm !== undefined && !Object.hasOwn(ALGORITHM_TAG, algorithm)) {
      invalid(`algorithm must be "fixed-window", "sliding-window" or "token-bucket"`)
    }
    if (algorithm !== undefined)
      return partitions(rateLimiterHead(keyPrefix, ALGORITHM_TAG[algorithm], name), target.tenant)
    // every algorithm: its one-character tag becomes the class `[fst]` (left unescaped, unlike the rest)
    const [before, after] = rateLimiterHead(keyPrefix, TAG_SLOT, name).split(TAG_SLOT) as [string, string]
    return escapeGlob(before) + `[${Object.values(ALGORITHM_TAG).join("")}]` + partitions(after, target.tenant)
  }
  if ("replayGuard" in target) {
    return partitions(replayGuardHead(keyPrefix, nameOf(target.replayGuard, "replayGuard")), target.tenant)
  }
  if ("keyValueStore" in target) {
    return partitions(keyValueStoreHead(keyPrefix, nameOf(target.keyValueStore, "keyValueStore")), undefined)
  }
  return invalid("give one of keyspace, rateLimiter, replayGuard or keyValueStore")
}
