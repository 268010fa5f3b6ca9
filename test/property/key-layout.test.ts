/**
 * Properties of the key layout, on pure functions and on LocalOnly (no Redis): the layout is injective over
 * (key prefix, keyspace, tenant, key), a partition's clear prefix covers exactly that partition, and a Keyspace
 * never lets two distinct (keyspace, tenant, key) triples share an entry or a clear reach outside its partition.
 *
 * Seeded: FC_SEED reproduces a run (printed below), FC_RUNS raises the number of runs (never below 1,000).
 */
import { Effect, Option } from "effect"
import * as fc from "fast-check"
import { describe, expect, it } from "vitest"
import { localOnly } from "effect-failclosed"
import { canonicalJson } from "../../src/internal/json.js"
import { inTarget, partitionScenario, scenarioKeyspaces, seeded } from "../support/property.js"
import {
  encodeSegment,
  escapeGlob,
  hashKey,
  keyspacePrefix,
  NO_TENANT_SEGMENT,
  PREFIX_PATTERN,
  tenantSegment
} from "../../src/internal/keys.js"

const params = seeded("key-layout")

// --- hostile strings -------------------------------------------------------------------------------------------------

/** glob metacharacters, the layout's separators, escapes, controls, line separators, bidi, combining, astral */
const hostileChar = fc.oneof(
  fc.constantFrom(
    "*",
    "?",
    "[",
    "]",
    "\\",
    "^",
    ":",
    "-",
    "_",
    "{",
    "}",
    "~",
    "t",
    "a",
    "A",
    "=",
    "/",
    "%",
    " ",
    "\n",
    "\r",
    "\0",
    "\u001b",
    "\u007f",
    "\u0085",
    "\u2028",
    "\u202e",
    "\ufeff",
    "é",
    "e\u0301",
    "\ud83d\ude00"
  ),
  // lone surrogates: malformed UTF-16 that UTF-8 would collapse to U+FFFD
  fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c)),
  fc.string({ unit: "binary", minLength: 1, maxLength: 1 })
)

/** non-empty, at most `maxLength` UTF-16 code units (a unit may be two; the cut may leave a lone surrogate) */
const hostileString = (maxLength: number) =>
  fc
    .oneof(
      { weight: 6, arbitrary: fc.string({ unit: hostileChar, minLength: 1, maxLength: Math.min(8, maxLength) }) },
      { weight: 2, arbitrary: fc.string({ unit: "binary", minLength: 1, maxLength: Math.min(40, maxLength) }) },
      {
        weight: 1,
        arbitrary: fc.string({ unit: hostileChar, minLength: Math.max(1, maxLength - 16), maxLength })
      }
    )
    .map((s) => s.slice(0, maxLength))

const keyPrefixArb = fc.oneof(fc.constantFrom("fc", "f", "fc.v2", "a-b_c"), fc.stringMatching(/^[A-Za-z0-9._-]{1,64}$/))
const keyspaceArb = hostileString(128)
const tenantArb = fc.option(hostileString(1_000), { nil: undefined, freq: 4 })
/** keys as the canonical JSON of an encoded key */
const keyArb = fc.oneof(hostileString(64), fc.jsonValue({ maxDepth: 2 })).map((k) => canonicalJson(k))

/** exactly what Keyspace does to build a store key */
const storeKey = (prefix: string, keyspace: string, tenant: string | undefined, canonicalKey: string) =>
  keyspacePrefix(prefix, keyspace) + tenantSegment(tenant) + ":" + hashKey(canonicalKey)

const decodeSegment = (segment: string): string => Buffer.from(segment, "base64url").toString("utf16le")

/** the left inverse of the layout: a store key back into its parts (throws when it is not a layout key) */
const parseStoreKey = (key: string) => {
  const parts = key.split(":")
  if (parts.length !== 4) throw new Error(`not 4 segments: ${JSON.stringify(key)}`)
  const [prefix, keyspace, tenant, hash] = parts as [string, string, string, string]
  if (!/^[A-Za-z0-9_-]+$/.test(keyspace) || !/^[A-Za-z0-9_-]{43}$/.test(hash)) throw new Error("not base64url")
  if (tenant !== NO_TENANT_SEGMENT && !/^t[A-Za-z0-9_-]*$/.test(tenant)) throw new Error("bad tenant segment")
  return {
    prefix,
    keyspace: decodeSegment(keyspace),
    tenant: tenant === NO_TENANT_SEGMENT ? undefined : decodeSegment(tenant.slice(1)),
    hash
  }
}

describe("key layout (pure)", () => {
  it("segment encoding is reversible (hence injective) and uses only [A-Za-z0-9_-]", () => {
    fc.assert(
      fc.property(hostileString(2_000), (s) => {
        const encoded = encodeSegment(s)
        expect(encoded).toMatch(/^[A-Za-z0-9_-]*$/)
        expect(decodeSegment(encoded)).toBe(s)
      }),
      params
    )
  })

  it("a store key parses back into exactly its (prefix, keyspace, tenant, key hash): the layout is injective", () => {
    fc.assert(
      fc.property(keyPrefixArb, keyspaceArb, tenantArb, keyArb, (prefix, keyspace, tenant, key) => {
        const parsed = parseStoreKey(storeKey(prefix, keyspace, tenant, key))
        expect(parsed).toEqual({ prefix, keyspace, tenant, hash: hashKey(key) })
      }),
      params
    )
  })

  it("no two distinct (keyspace, tenant, key) triples share a store key, even over near-colliding strings", () => {
    // a tiny alphabet full of separators makes naive concatenations collide: ("a:b", "c") vs ("a", "b:c")
    const tiny = fc.string({
      unit: fc.constantFrom("a", ":", "-", "t", "*", "\\", "\ud800"),
      minLength: 1,
      maxLength: 4
    })
    const triple = fc.tuple(
      tiny,
      fc.option(tiny, { nil: undefined }),
      tiny.map((k) => canonicalJson(k))
    )
    fc.assert(
      fc.property(triple, triple, ([ks1, t1, k1], [ks2, t2, k2]) => {
        const same = ks1 === ks2 && t1 === t2 && k1 === k2
        expect(storeKey("fc", ks1, t1, k1) === storeKey("fc", ks2, t2, k2)).toBe(same)
      }),
      params
    )
  })

  it("a partition's clear prefix matches a store key exactly when the key is in that partition", () => {
    const tiny = fc.string({
      unit: fc.constantFrom("a", ":", "-", "t", "*", "?", "[", "\\"),
      minLength: 1,
      maxLength: 3
    })
    const tenant = fc.option(tiny, { nil: undefined })
    const partition = fc.record({ keyspace: tiny, tenant, allTenants: fc.boolean() })
    fc.assert(
      fc.property(partition, tiny, tenant, keyArb, (p, keyspace, t, key) => {
        const prefix = keyspacePrefix("fc", p.keyspace) + (p.allTenants ? "" : tenantSegment(p.tenant) + ":")
        // no glob metacharacter: SCAN MATCH <prefix>* means "starts with <prefix>" and nothing else
        expect(escapeGlob(prefix)).toBe(prefix)
        const inside = keyspace === p.keyspace && (p.allTenants || t === p.tenant)
        expect(storeKey("fc", keyspace, t, key).startsWith(prefix)).toBe(inside)
      }),
      params
    )
  })

  it("no keyspace partition prefix reaches the rate limiter, replay guard or key-value store namespaces", () => {
    fc.assert(
      fc.property(keyPrefixArb, keyspaceArb, fc.constantFrom("{rl:f:", "{rg:", "~kv:"), (prefix, keyspace, other) => {
        expect(`${prefix}:${other}`.startsWith(keyspacePrefix(prefix, keyspace))).toBe(false)
        expect(keyspacePrefix(prefix, keyspace).startsWith(`${prefix}:${other}`)).toBe(false)
      }),
      params
    )
  })

  it("two key prefixes never share a key (the prefix pattern has no separator)", () => {
    fc.assert(
      fc.property(keyPrefixArb, keyPrefixArb, keyspaceArb, (p1, p2, keyspace) => {
        expect(PREFIX_PATTERN.test(p1) && PREFIX_PATTERN.test(p2)).toBe(true)
        if (p1 !== p2) expect(keyspacePrefix(p1, keyspace).startsWith(`${p2}:`)).toBe(false)
      }),
      params
    )
  })
})

// --- Keyspace on LocalOnly -------------------------------------------------------------------------------------------

const keyspaces = scenarioKeyspaces(1_000)

/** entries over few names, tenants and keys, so that partitions share names and near-collide */
const entriesArb = partitionScenario({
  hostileString,
  maxTenantLength: 1_000,
  maxKeyLength: 32,
  keyDepth: 2,
  maxEntries: 12
})

describe("Keyspace on LocalOnly", () => {
  it("distinct (keyspace, tenant, key) triples never share an entry", async () => {
    await fc.assert(
      fc.asyncProperty(entriesArb, async ({ entries }) => {
        const values = await Effect.runPromise(
          Effect.gen(function* () {
            yield* keyspaces.setAll(entries)
            return yield* keyspaces.readAll(entries)
          }).pipe(Effect.provide(localOnly()))
        )
        expect(values).toEqual(entries.map((_, i) => Option.some(i)))
      }),
      params
    )
  })

  it("clear of a tenant, the untenanted partition or a whole keyspace deletes nothing outside it", async () => {
    await fc.assert(
      fc.asyncProperty(entriesArb, async ({ entries, target }) => {
        const [deleted, values] = await Effect.runPromise(
          Effect.gen(function* () {
            yield* keyspaces.setAll(entries)
            const deleted = yield* keyspaces.clear(target)
            return [deleted, yield* keyspaces.readAll(entries)] as const
          }).pipe(Effect.provide(localOnly()))
        )
        expect(values).toEqual(entries.map((e, i) => (inTarget(e, target) ? Option.none() : Option.some(i))))
        expect(deleted).toBe(entries.filter((e) => inTarget(e, target)).length)
      }),
      params
    )
  })
})
