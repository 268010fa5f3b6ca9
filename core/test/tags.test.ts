/**
 * Tags in the core, without Effect: the tagged envelope, the input check, and the read pipeline's tag check.
 */
import { describe, expect, it } from "vitest"
import { Invalid, ReadPipeline, STORE, seal, type TagStamps } from "../src/index.js"
import {
  checkMarks,
  isTagged,
  makeTagStamps,
  newStampToken,
  readTagged,
  tagEntry,
  tagHash,
  tagHashes,
  tagsProblem,
  tagStampHead
} from "../src/tags.js"

describe("the tagged envelope", () => {
  // catches: an envelope that does not read back, or that JSON or a sealed entry could be mistaken for
  it("reads back what it wrote, and nothing else is tagged", () => {
    const marks = [
      { hash: tagHash("org:7"), token: newStampToken() },
      { hash: tagHash("plan:pro"), token: newStampToken() }
    ]
    const raw = tagEntry(marks, '{"a":1}')
    expect(isTagged(raw)).toBe(true)
    expect(readTagged(raw)).toEqual({ marks, entry: '{"a":1}' })
    expect(readTagged(tagEntry(marks, seal('{"a":1}', 1000, 50)))?.entry).toBe(seal('{"a":1}', 1000, 50))
    for (const untagged of ['{"a":1}', "[1]", '"#1:x"', seal("1", 0, 1)]) expect(isTagged(untagged)).toBe(false)
    // corrupt heads are refused, not misread
    for (const corrupt of ["#1:abc", "#1:abc\n1", "#1:.t\n1", "#1:h.\n1", "#2:h.t\n1"]) {
      expect(readTagged(corrupt)).toBeUndefined()
    }
  })

  // catches: a token or hash that could hold the envelope's separators, tokens that repeat, tags that collide
  it("hashes and tokens are base64url of fixed length; tokens do not repeat", () => {
    const tokens = new Set(Array.from({ length: 1000 }, newStampToken))
    expect(tokens.size).toBe(1000)
    for (const t of tokens) expect(t).toMatch(/^[A-Za-z0-9_-]{22}$/)
    expect(tagHash("org:7")).toMatch(/^[A-Za-z0-9_-]{24}$/)
    expect(tagHash("a")).not.toBe(tagHash("b"))
    // lone surrogates stay distinct
    expect(tagHash("\ud800")).not.toBe(tagHash("\ud801"))
    expect(tagHashes(["a", "b", "a"])).toEqual([tagHash("a"), tagHash("b")])
  })

  // catches: a stamp head that shares a prefix with an entry's (k), or that a tenant or name could forge
  it("stamps live under their own feature tag", () => {
    expect(tagStampHead("fc", "users")).toBe("fc:t:users:")
    expect(tagStampHead("fc", "a:b")).toMatch(/^fc:t:~[A-Za-z0-9_-]+:$/)
  })

  it("checks tags as input", () => {
    expect(tagsProblem(["a", "b"])).toBeUndefined()
    expect(tagsProblem([])).toBeUndefined()
    expect(tagsProblem("a")).toMatch(/array/)
    expect(tagsProblem([""])).toMatch(/tags\[0\]/)
    expect(tagsProblem(["a", 1])).toMatch(/tags\[1\]/)
    expect(tagsProblem(Array.from({ length: 65 }, (_, i) => `t${i}`))).toMatch(/at most 64/)
    expect(tagsProblem(["x".repeat(1025)])).toMatch(/longer/)
  })

  // catches: an unknown stamp taken as valid, or a missing one as unknown
  it("checkMarks: valid only when every stamp holds the token", () => {
    const marks = [
      { hash: "a", token: "1" },
      { hash: "b", token: "2" }
    ]
    expect(checkMarks(marks, (h) => (h === "a" ? "1" : "2"))).toBe("valid")
    expect(checkMarks(marks, (h) => (h === "a" ? "1" : "3"))).toBe("invalid")
    expect(checkMarks(marks, (h) => (h === "a" ? "1" : null))).toBe("invalid")
    expect(checkMarks(marks, (h) => (h === "a" ? "1" : undefined))).toBe("unknown")
    expect(checkMarks(marks, (h) => (h === "a" ? "0" : undefined))).toBe("invalid")
  })
})

describe("the read pipeline with tags", () => {
  const decode = (json: string) => {
    try {
      return JSON.parse(json) as unknown
    } catch {
      return new Invalid("not JSON")
    }
  }
  const stampsOf = (known: Map<string, string | null>): TagStamps => ({
    stampKeyOf: (entryKey, hash) => "fc:t:ks:" + entryKey.split(":")[3] + ":" + hash,
    known: (k) => known.get(k)
  })
  const now = () => 0
  const key = "fc:k:ks:acme:h1"
  const raw = tagEntry([{ hash: "H", token: "T1" }], '{"n":1}')

  // catches: a tagged entry answered without its stamps, or a stamp of another tenant consulted
  it("a store answer: the stamps named, then a hit only while the stamp holds the token", () => {
    const pipeline = new ReadPipeline({ decode, shareDecoded: true, tags: stampsOf(new Map()) })
    expect(pipeline.unknownStamps(key, raw)).toEqual(["fc:t:ks:acme:H"])
    expect(pipeline.unknownStamps(key, '{"n":1}')).toBeUndefined()
    const entry = { value: raw, backend: "redis" as const, degraded: false }
    const hit = pipeline.settle(key, STORE, entry, now, false, new Map([["fc:t:ks:acme:H", "T1"]]))
    expect(hit._tag).toBe("Found")
    for (const stamp of ["T2", null]) {
      const miss = pipeline.settle(key, STORE, entry, now, false, new Map([["fc:t:ks:acme:H", stamp]]))
      expect(miss._tag).toBe("Miss")
      expect(miss._tag === "Miss" && miss.invalid).toBeUndefined()
    }
    // no stamp answer at all: a miss (fail closed), never a hit
    expect(pipeline.settle(key, STORE, entry, now, false)._tag).toBe("Miss")
  })

  // catches: a LocalOnly tagged entry read without its stamp, or a removed stamp not seen
  it("LocalOnly memory: stamps known in process", () => {
    const memory = new Map<string, string>([[key, raw]])
    const known = new Map<string, string | null>([["fc:t:ks:acme:H", "T1"]])
    const local = (k: string) => {
      const value = memory.get(k)
      return value === undefined ? undefined : { value, backend: "local" as const, degraded: false }
    }
    const pipeline = new ReadPipeline({ decode, shareDecoded: true, local, tags: stampsOf(known) })
    expect(pipeline.lookup(key, now, false)).toMatchObject({ _tag: "Found", value: { n: 1 } })
    known.set("fc:t:ks:acme:H", null)
    expect(pipeline.lookup(key, now, false)).toMatchObject({ _tag: "Miss" })
  })

  // catches: a corrupt tag head decoded as a value
  it("a corrupt tagged entry is invalid", () => {
    const pipeline = new ReadPipeline({ decode, shareDecoded: true, tags: stampsOf(new Map()) })
    const read = pipeline.settle(key, STORE, { value: "#1:broken", backend: "redis", degraded: false }, now, false)
    expect(read._tag === "Miss" && read.invalid?.reason).toMatch(/tags are corrupt/)
  })
})

describe("makeTagStamps (the stamps both Effect lines use)", () => {
  // catches: a stamp key outside the entry's tenant partition (tenants sharing a tag), or a LocalOnly stamp read as
  // unknown (a round trip per read) or a missing one as unknown instead of known-missing
  it("puts a stamp in its entry's partition, and reads LocalOnly stamps from memory", () => {
    const memory = new Map([["app:t:users:acme:h1", { value: "token-1" }]])
    const stamps = makeTagStamps({
      keyspace: "users",
      entryHead: "app:k:users:",
      stampHead: tagStampHead("app", "users"),
      local: (key) => memory.get(key),
      maxStalenessMillis: 1_000
    })
    expect(stamps.stampKeyOf("app:k:users:acme:some-key", "h1")).toBe("app:t:users:acme:h1")
    expect(stamps.stampKeyOf("app:k:users:other:some-key", "h1")).toBe("app:t:users:other:h1")
    expect(stamps.known("app:t:users:acme:h1")).toBe("token-1")
    expect(stamps.known("app:t:users:other:h1")).toBeNull()
    expect(stamps.near).toBeUndefined()
  })

  // catches: a Redis cache without a near cache answering stamps from nowhere (they must be read from Redis)
  it("knows nothing in process without memory or a near cache", () => {
    const stamps = makeTagStamps({
      keyspace: "users",
      entryHead: "app:k:users:",
      stampHead: "app:t:users:",
      maxStalenessMillis: 1_000
    })
    expect(stamps.known("app:t:users:acme:h1")).toBeUndefined()
  })
})
