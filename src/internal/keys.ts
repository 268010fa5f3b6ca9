/**
 * Redis key layout. Every key is
 *
 *   <prefix>:<keyspace>:<tenant>:<key hash>
 *
 * where keyspace and tenant are base64url-encoded UTF-16 (alphabet [A-Za-z0-9_-]: no ':' and no glob
 * character), the tenant segment is "-" for no tenant or "t" followed by the encoding, and the
 * key hash is the base64url SHA-256 of the key's canonical JSON. Each segment is therefore
 * self-delimiting, so the layout is injective over (prefix, keyspace, tenant, key), and a
 * SCAN MATCH pattern built from a partition prefix can only match keys of that partition.
 */
import * as crypto from "node:crypto"

/** @internal */
export const PREFIX_PATTERN = /^[A-Za-z0-9._-]{1,64}$/

/**
 * UTF-16 code units, not UTF-8: UTF-8 would map every lone surrogate to U+FFFD, so two
 * different (malformed) ids would share a key. Code units keep the encoding injective over
 * all JavaScript strings.
 * @internal
 */
export const encodeSegment = (s: string): string => Buffer.from(s, "utf16le").toString("base64url")

/**
 * The string a segment encodes (the inverse of {@link encodeSegment}; a malformed segment decodes to some string).
 * @internal
 */
export const decodeSegment = (segment: string): string => Buffer.from(segment, "base64url").toString("utf16le")

/** @internal */
export const NO_TENANT_SEGMENT = "-"

/** @internal */
export const tenantSegment = (tenant: string | undefined): string =>
  tenant === undefined ? NO_TENANT_SEGMENT : "t" + encodeSegment(tenant)

/** @internal */
export const keyspacePrefix = (prefix: string, keyspace: string): string => `${prefix}:${encodeSegment(keyspace)}:`

/** @internal */
export const hashKey: (canonical: string) => string =
  // the one-shot crypto.hash (Node >= 20.12) is about 3x cheaper than createHash().update().digest()
  typeof crypto.hash === "function"
    ? (canonical) => crypto.hash("sha256", canonical, "base64url")
    : (canonical) => crypto.createHash("sha256").update(canonical).digest("base64url")

/**
 * SHA-256 of a string's UTF-16 code units (so malformed strings stay distinct), base64url: rate-limit subjects and
 * replay nonces.
 * @internal
 */
export const hashUtf16: (s: string) => string =
  // the one-shot crypto.hash (Node >= 20.12) is about 4x cheaper than createHash().update().digest()
  typeof crypto.hash === "function"
    ? (s) => crypto.hash("sha256", Buffer.from(s, "utf16le"), "base64url")
    : (s) => crypto.createHash("sha256").update(s, "utf16le").digest("base64url")

/** tenant partitions memoised per cache key prefix (cleared when full), for tenant ids up to this length */
const TENANT_MEMO_SIZE = 1024
const MEMO_TENANT_LENGTH = 256

/**
 * The partition prefixes of one feature, `<head(keyPrefix)><tenant segment>:`, memoised per cache key prefix
 * (normally one) and per tenant id: a call builds only its own part of a key, and gets the same string for the same
 * partition every time.
 * @internal
 */
export const partitionPrefixes = (
  head: (keyPrefix: string) => string
): ((keyPrefix: string, tenant: string | undefined) => string) => {
  interface Prefixes {
    readonly base: string
    readonly noTenant: string
    readonly tenants: Map<string, string>
  }
  const byKeyPrefix = new Map<string, Prefixes>()
  let lastKeyPrefix: string | undefined
  let last: Prefixes | undefined
  const prefixesOf = (keyPrefix: string): Prefixes => {
    if (keyPrefix === lastKeyPrefix && last !== undefined) return last
    let p = byKeyPrefix.get(keyPrefix)
    if (p === undefined) {
      const base = head(keyPrefix)
      p = { base, noTenant: base + tenantSegment(undefined) + ":", tenants: new Map() }
      byKeyPrefix.set(keyPrefix, p)
    }
    lastKeyPrefix = keyPrefix
    last = p
    return p
  }
  return (keyPrefix, tenant) => {
    const p = prefixesOf(keyPrefix)
    if (tenant === undefined) return p.noTenant
    let t = p.tenants.get(tenant)
    if (t === undefined) {
      t = p.base + tenantSegment(tenant) + ":"
      if (tenant.length <= MEMO_TENANT_LENGTH) {
        if (p.tenants.size >= TENANT_MEMO_SIZE) p.tenants.clear()
        p.tenants.set(tenant, t)
      }
    }
    return t
  }
}

/**
 * Escapes glob metacharacters for SCAN MATCH. Partition prefixes built by this module contain
 * none, but the escape keeps that a local fact rather than an assumption.
 * @internal
 */
export const escapeGlob = (s: string): string => s.replace(/[*?[\]\\^]/g, (c) => "\\" + c)
