/**
 * The key codec (pure): the layout is injective over (prefix, feature, name, tenant, key), every SCAN pattern matches
 * exactly the keys of its target (checked with a Redis glob matcher, whatever characters names and tenant ids hold,
 * lone surrogates included), memoised keys are the keys, and a typical key fits in 48 bytes.
 *
 * Seeded: FC_SEED reproduces a run (printed below), FC_RUNS raises the number of runs (never below 1,000).
 */
import * as fc from "fast-check"
import { describe, expect, it } from "vitest"
import {
  ALGORITHM_TAG,
  canonicalJson,
  decodeSegment,
  encodeSegment,
  escapeGlob,
  FeatureKeys,
  HASH_LENGTH,
  hashCanonical,
  hashString,
  KEY_PREFIX_PATTERN,
  keyspaceEntryKey,
  keyspaceHead,
  keyValueStoreHead,
  LOCK_SUFFIX,
  NO_TENANT_SEGMENT,
  persistenceHead,
  rateLimiterHead,
  replayGuardHead,
  scanPattern,
  type ScanTarget,
  tagStampHead,
  tenantProblem,
  tenantSegment
} from "../src/index.js"
import { hostileString, seeded } from "./support/property.js"

const params = seeded("keys")

// --- the features, as the Effect package builds their keys -----------------------------------------------------------

type Feature =
  | "keyspace"
  | "fixed-window"
  | "sliding-window"
  | "token-bucket"
  | "replayGuard"
  | "keyValueStore"
  | "persistence"
  | "tagStamp"
const FEATURES: ReadonlyArray<Feature> = [
  "keyspace",
  "fixed-window",
  "sliding-window",
  "token-bucket",
  "replayGuard",
  "keyValueStore",
  "persistence",
  "tagStamp"
]
/** the tag after `<prefix>:` */
const TAG: Record<Feature, string> = {
  keyspace: "k",
  "fixed-window": "{rf",
  "sliding-window": "{rs",
  "token-bucket": "{rt",
  replayGuard: "{g",
  keyValueStore: "v",
  persistence: "p",
  tagStamp: "t"
}
const headOf = (feature: Feature, keyPrefix: string, name: string): string => {
  switch (feature) {
    case "keyspace":
      return keyspaceHead(keyPrefix, name)
    case "replayGuard":
      return replayGuardHead(keyPrefix, name)
    case "keyValueStore":
      return keyValueStoreHead(keyPrefix, name)
    case "persistence":
      return persistenceHead(keyPrefix, name)
    case "tagStamp":
      // a keyspace's tag stamps: `<stamp head><tenant>:<tag hash>` (the tag hashed as a string, core/src/tags.ts)
      return tagStampHead(keyPrefix, name)
    default:
      return rateLimiterHead(keyPrefix, ALGORITHM_TAG[feature], name)
  }
}
const isTagged = (feature: Feature) => TAG[feature].startsWith("{")
/** a Keyspace hashes canonical JSON; the others a string (subject, nonce, store key, tag) */
const keysOf = (feature: Feature, name: string) =>
  new FeatureKeys(
    (keyPrefix) => headOf(feature, keyPrefix, name),
    feature === "keyspace" ? "canonical" : "string",
    isTagged(feature) ? "}" : ""
  )
const hashOf = (feature: Feature, input: string) => (feature === "keyspace" ? hashCanonical(input) : hashString(input))
const keyOf = (feature: Feature, keyPrefix: string, name: string, tenant: string | undefined, input: string) =>
  keysOf(feature, name).key(keyPrefix, tenant, input)

/** the left inverse of the layout: a key back into its parts (throws when it is not a layout key) */
const parseKey = (key: string) => {
  const m = /^([A-Za-z0-9._-]{1,64}):(k|\{r[fst]|\{g|v|p|t):([^:]+):([^:]+):([A-Za-z0-9_-]+)(\}?)$/.exec(key)
  if (m === null) throw new Error(`not a layout key: ${JSON.stringify(key)}`)
  const [, prefix, tag, nameSegment, tenantSeg, hash, end] = m as unknown as [
    string,
    string,
    string,
    string,
    string,
    string,
    string
  ]
  const feature = FEATURES.find((f) => TAG[f] === tag)!
  if (hash.length !== HASH_LENGTH) throw new Error("hash of the wrong length")
  if ((end === "}") !== isTagged(feature)) throw new Error("hash tag not closed, or closed where none was opened")
  const name = decodeSegment(nameSegment)
  const tenant = tenantSeg === NO_TENANT_SEGMENT ? undefined : decodeSegment(tenantSeg)
  if (name === undefined || tenant === "") throw new Error("not a segment")
  if (tenantSeg !== NO_TENANT_SEGMENT && tenant === undefined) throw new Error("not a tenant segment")
  return { prefix, feature, name, tenant, hash }
}

/** Redis' glob (stringmatchlen: `*`, `?`, `[…]` with `^` and ranges, `\` escapes), as a RegExp */
const globRegExp = (pattern: string): RegExp => {
  const lit = (c: string) => c.replace(/[\\^$.*+?()[\]{}|/-]/g, "\\$&")
  let out = ""
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!
    if (c === "\\" && i + 1 < pattern.length) out += lit(pattern[++i]!)
    else if (c === "*") out += "[\\s\\S]*"
    else if (c === "?") out += "[\\s\\S]"
    else if (c === "[") {
      let cls = ""
      let j = i + 1
      if (pattern[j] === "^") {
        cls += "^"
        j++
      }
      for (; j < pattern.length && pattern[j] !== "]"; j++) {
        if (pattern[j] === "\\" && j + 1 < pattern.length) cls += lit(pattern[++j]!)
        else if (pattern[j + 1] === "-" && j + 2 < pattern.length && pattern[j + 2] !== "]") {
          cls += lit(pattern[j]!) + "-" + lit(pattern[j + 2]!)
          j += 2
        } else cls += lit(pattern[j]!)
      }
      out += `[${cls}]`
      i = j
    } else out += lit(c)
  }
  return new RegExp(`^${out}$`, "s")
}
const globMatches = (pattern: string, key: string) => globRegExp(pattern).test(key)

// --- arbitraries -----------------------------------------------------------------------------------------------------

const keyPrefixArb = fc.oneof(fc.constantFrom("fc", "f", "fc.v2", "a-b_c"), fc.stringMatching(/^[A-Za-z0-9._-]{1,64}$/))
const nameArb = hostileString(128)
const tenantArb = fc.option(hostileString(1_000), { nil: undefined, freq: 4 })
const featureArb = fc.constantFrom(...FEATURES)
/** keys as the canonical JSON of an encoded key */
const keyArb = fc.oneof(hostileString(64), fc.jsonValue({ maxDepth: 2 })).map((k) => canonicalJson(k))
/** a tiny alphabet full of separators, marks and glob characters: naive concatenations collide, prefixes overlap */
const tiny = fc.string({
  unit: fc.constantFrom("a", "k", ":", "-", "~", "t", "*", "?", "[", "\\", "{", "\ud800", "\udc00"),
  minLength: 1,
  maxLength: 4
})

describe("key segments", () => {
  it("decode back to the string (so the encoding is injective) and hold no separator, brace or glob character", () => {
    fc.assert(
      fc.property(hostileString(2_000), (s) => {
        const segment = encodeSegment(s)
        expect(segment).toMatch(/^[A-Za-z0-9._~-]+$/)
        expect(decodeSegment(segment)).toBe(s)
        // written as it is exactly when it holds only the safe alphabet (and is not the no-tenant mark)
        expect(segment === s).toBe(/^[A-Za-z0-9._-]+$/.test(s) && s !== NO_TENANT_SEGMENT)
        expect(segment.startsWith("~")).toBe(segment !== s)
        expect(tenantSegment(s)).not.toBe(NO_TENANT_SEGMENT)
      }),
      params
    )
  })

  it("keep lone surrogates apart (UTF-16 code units, not UTF-8)", () => {
    expect(encodeSegment("\ud800")).not.toBe(encodeSegment("\ud801"))
    expect(encodeSegment("\ud800")).not.toBe(encodeSegment("\ufffd"))
    expect(hashString("\ud800")).not.toBe(hashString("\ud801"))
    expect(tenantSegment(undefined)).toBe("-")
    expect(tenantSegment("-")).toBe("~LQA")
    expect(tenantSegment("acme.eu-1")).toBe("acme.eu-1")
  })
})

describe("key layout", () => {
  it("a typical key is 43 bytes: prefix fc, keyspace profiles, tenant acme, key { userId: 12345 }", () => {
    const key = keyspaceEntryKey({ keyspace: "profiles", tenant: "acme", key: '{"userId":12345}' })
    expect(key).toBe("fc:k:profiles:acme:" + hashCanonical('{"userId":12345}'))
    expect(Buffer.byteLength(key, "utf8")).toBe(43)
    expect(Buffer.byteLength(key, "utf8")).toBeLessThanOrEqual(48)
    // the same key the keyspace writes, whatever the spacing and property order of the JSON given
    expect(keyOf("keyspace", "fc", "profiles", "acme", canonicalJson({ userId: 12345 }))).toBe(key)
    expect(keyspaceEntryKey({ keyspace: "profiles", tenant: "acme", key: ' { "userId" : 12345 } ' })).toBe(key)
    expect(keyspaceEntryKey({ keyspace: "p", key: '{"b":1,"a":[2]}' })).toBe(
      keyspaceEntryKey({ keyspace: "p", tenant: null, key: '{"a":[2],"b":1}' })
    )
  })

  it("hashes are 144 bits of SHA-256: 24 base64url characters", () => {
    fc.assert(
      fc.property(keyArb, (k) => {
        expect(hashCanonical(k)).toMatch(/^[A-Za-z0-9_-]{24}$/)
        expect(Buffer.from(hashCanonical(k), "base64url")).toHaveLength(18)
      }),
      params
    )
  })

  it("a key parses back into exactly its (prefix, feature, name, tenant, hash): the layout is injective", () => {
    fc.assert(
      fc.property(keyPrefixArb, featureArb, nameArb, tenantArb, keyArb, (prefix, feature, name, tenant, input) => {
        const key = keyOf(feature, prefix, name, tenant, input)
        expect(parseKey(key)).toEqual({ prefix, feature, name, tenant, hash: hashOf(feature, input) })
        expect(escapeGlob(key)).toBe(key)
      }),
      params
    )
  })

  it("no two distinct (prefix, feature, name, tenant, key) tuples share a key, even over near-colliding strings", () => {
    const tuple = fc.tuple(
      featureArb,
      fc.constantFrom("fc", "f", "fc.k"),
      tiny,
      fc.option(tiny, { nil: undefined }),
      tiny.map((k) => canonicalJson(k))
    )
    fc.assert(
      fc.property(tuple, tuple, (a, b) => {
        const same = a.every((x, i) => x === b[i])
        expect(keyOf(...a) === keyOf(...b)).toBe(same)
      }),
      params
    )
  })

  it("a lock key stays in its entry's partition and is no entry's key", () => {
    fc.assert(
      fc.property(nameArb, tenantArb, keyArb, keyArb, (name, tenant, k1, k2) => {
        const keys = keysOf("keyspace", name)
        const lock = keys.key("fc", tenant, k1) + LOCK_SUFFIX
        expect(lock.startsWith(keys.partition("fc", tenant))).toBe(true)
        expect(() => parseKey(lock)).toThrow()
        expect(lock).not.toBe(keys.key("fc", tenant, k2))
      }),
      params
    )
  })

  it("two key prefixes never share a key (the prefix pattern has no separator)", () => {
    fc.assert(
      fc.property(keyPrefixArb, keyPrefixArb, featureArb, nameArb, (p1, p2, feature, name) => {
        expect(KEY_PREFIX_PATTERN.test(p1) && KEY_PREFIX_PATTERN.test(p2)).toBe(true)
        if (p1 !== p2) expect(headOf(feature, p1, name).startsWith(`${p2}:`)).toBe(false)
      }),
      params
    )
  })
})

describe("SCAN patterns", () => {
  /** a target and whether a key of (feature, name, tenant) belongs to it */
  // every feature but the tag stamps has a ScanTarget (their keys are among those a pattern must not match)
  const targetArb = fc.oneof(
    fc.record({
      feature: fc.constantFrom(...FEATURES.filter((f) => f !== "tagStamp")),
      name: tiny,
      tenant: fc.option(fc.option(tiny, { nil: null }), { nil: undefined })
    })
  )
  const scanTargetOf = (t: { feature: Feature; name: string; tenant: string | null | undefined }): ScanTarget => {
    switch (t.feature) {
      case "keyspace":
        return { keyspace: t.name, tenant: t.tenant }
      case "replayGuard":
        return { replayGuard: t.name, tenant: t.tenant }
      case "keyValueStore":
        return { keyValueStore: t.name }
      case "persistence":
        return { persistence: t.name }
      case "tagStamp":
        throw new Error("no ScanTarget for tag stamps")
      default:
        return { rateLimiter: t.name, algorithm: t.feature, tenant: t.tenant }
    }
  }

  /** a key's parts: each one the target's or another, so that about half of the keys are the target's */
  const nearArb = <A>(same: A, other: fc.Arbitrary<A>) => fc.oneof(fc.constant(same), other)

  it("match a key exactly when it belongs to the target, for hostile names and tenant ids", () => {
    let inside = 0
    fc.assert(
      fc.property(
        targetArb.chain((t) =>
          fc.tuple(
            fc.constant(t),
            nearArb(t.feature, featureArb),
            nearArb(t.name, tiny),
            nearArb(t.tenant ?? undefined, fc.option(tiny, { nil: undefined })),
            keyArb
          )
        ),
        ([t, feature, name, tenant, input]) => {
          const noTenants = t.feature === "keyValueStore" || t.feature === "persistence"
          const belongs =
            feature === t.feature &&
            name === t.name &&
            (noTenants || t.tenant === undefined || (t.tenant ?? undefined) === tenant)
          if (belongs) inside++
          expect(globMatches(scanPattern(scanTargetOf(t)), keyOf(feature, "fc", name, tenant, input))).toBe(belongs)
        }
      ),
      params
    )
    // neither side is vacuous
    expect(inside).toBeGreaterThan(params.numRuns / 10)
    expect(inside).toBeLessThan(params.numRuns * 0.9)
  })

  it("of a rate limiter without an algorithm, match the keys of all three algorithms and nothing else", () => {
    let inside = 0
    fc.assert(
      fc.property(
        fc
          .tuple(tiny, fc.option(tiny, { nil: undefined }))
          .chain(([name, tenant]) =>
            fc.tuple(
              fc.constant(name),
              fc.constant(tenant),
              featureArb,
              nearArb(name, tiny),
              nearArb(tenant, fc.option(tiny, { nil: undefined })),
              keyArb
            )
          ),
        ([name, tenant, feature, keyName, keyTenant, input]) => {
          const pattern = scanPattern({ rateLimiter: name, tenant })
          const isLimiter = feature === "fixed-window" || feature === "sliding-window" || feature === "token-bucket"
          const belongs = isLimiter && keyName === name && (tenant === undefined || tenant === keyTenant)
          if (belongs) inside++
          const key = keyOf(feature, "fc", keyName, keyTenant, input)
          expect(globMatches(pattern, key)).toBe(belongs)
          // a sliding window's second key (the Redis store appends `:l`, `:m` after the `}`)
          if (feature === "sliding-window") expect(globMatches(pattern, key + ":l")).toBe(belongs)
        }
      ),
      params
    )
    expect(inside).toBeGreaterThan(params.numRuns / 20)
  })

  it("reads as the documentation shows", () => {
    expect(scanPattern({ keyspace: "profiles", tenant: "acme" })).toBe("fc:k:profiles:acme:*")
    expect(scanPattern({ keyspace: "profiles", tenant: null })).toBe("fc:k:profiles:-:*")
    expect(scanPattern({ keyspace: "profiles" })).toBe("fc:k:profiles:*")
    expect(scanPattern({ rateLimiter: "login" })).toBe("fc:{r[fst]:login:*")
    expect(scanPattern({ rateLimiter: "login", algorithm: "token-bucket", keyPrefix: "app" })).toBe("app:{rt:login:*")
    expect(scanPattern({ replayGuard: "webhooks", tenant: "a*" })).toBe("fc:{g:webhooks:~YQAqAA:*")
    expect(scanPattern({ keyValueStore: "sessions" })).toBe("fc:v:sessions:*")
    expect(scanPattern({ persistence: "users" })).toBe("fc:p:users:*")
  })

  it("refuse an empty name or tenant and an invalid key prefix with an Error that says what to fix", () => {
    expect(() => scanPattern({ keyspace: "" })).toThrow(/keyspace must be a non-empty string/)
    expect(() => scanPattern({ replayGuard: "webhooks", tenant: "" })).toThrow(/tenant must be a non-empty/)
    expect(() => scanPattern({ keyspace: "profiles", keyPrefix: "a*" })).toThrow(/keyPrefix must match/)
    expect(() => keyspaceEntryKey({ keyspace: "profiles", key: "{userId:1}" })).toThrow(/key is not JSON text/)
    expect(() => keyspaceEntryKey({ keyspace: "profiles", tenant: "", key: "1" })).toThrow(/tenant must be/)
    expect(() => keyspaceEntryKey({ keyspace: "", key: "1" })).toThrow(/keyspace must be a non-empty/)
  })
})

describe("FeatureKeys", () => {
  it("memoised keys are exactly the keys, whatever the order of prefixes, tenants and inputs", () => {
    const call = fc.tuple(
      fc.constantFrom("fc", "app"),
      fc.option(fc.constantFrom("a", "b", "~", "\ud800"), { nil: undefined }),
      fc.constantFrom("1", "2", '"x"', "[]")
    )
    fc.assert(
      fc.property(featureArb, fc.array(call, { minLength: 1, maxLength: 30 }), (feature, calls) => {
        const keys = keysOf(feature, "n")
        for (const [prefix, tenant, input] of calls) {
          const expected =
            headOf(feature, prefix, "n") +
            tenantSegment(tenant) +
            ":" +
            hashOf(feature, input) +
            (isTagged(feature) ? "}" : "")
          expect(keys.key(prefix, tenant, input)).toBe(expected)
        }
      }),
      params
    )
  })
})

describe("tenantProblem", () => {
  it("is the one check of every feature: a non-empty string up to the limit, the id never in the reason", () => {
    expect(tenantProblem(undefined, 8)).toBeUndefined()
    expect(tenantProblem("acme", 8)).toBeUndefined()
    expect(tenantProblem("", 8)).toBe("tenant id must be a non-empty string")
    expect(tenantProblem(42, 8)).toBe("tenant id must be a non-empty string")
    expect(tenantProblem("secret-tenant", 8)).toBe("tenant id is longer than 8 characters")
  })
})
