/**
 * The read pipeline without Effect and without Redis: a LocalOnly memory read, a near hit, a round trip that fills
 * the near cache (or does not), freshness of sealed entries wherever they are read from, and what each read reports.
 * The near cache here is a plain Map behind the core's `Near` interface (its coherence is tested against real
 * redis-servers in test/NearCache.test.ts).
 */
import { describe, expect, it } from "vitest"
import { Invalid, seal, unseal } from "../src/envelope.js"
import {
  isRead,
  type Near,
  type NearEntry,
  type NearTicket,
  ReadPipeline,
  type Read,
  STORE,
  type StoreEntry
} from "../src/readPipeline.js"

/** a decoder that counts its calls: JSON numbers only */
const counting = () => {
  const calls = { n: 0 }
  const decode = (json: string): number | Invalid => {
    calls.n++
    const v: unknown = JSON.parse(json)
    return typeof v === "number" ? v : new Invalid("not a number")
  }
  return { calls, decode }
}

/** a near cache that keeps every clean answer, with tickets dirtied by writes */
const mapNear = () => {
  const entries = new Map<string, NearEntry<unknown>>()
  const counts = { hits: 0, misses: 0 }
  let generation = 0
  const near: Near<unknown> & { readonly entries: typeof entries; readonly counts: typeof counts } = {
    entries,
    counts,
    lookup: (key) => entries.get(key),
    beginRead: () => ({ generation }),
    endRead: (key, ticket, json) => {
      if (typeof json !== "string" || ticket.generation !== generation) return undefined
      const entry = { json, memo: undefined }
      entries.set(key, entry)
      return entry
    },
    beginWrite: (key) => {
      entries.delete(key)
      return { generation: ++generation }
    },
    endWrite: (key, ticket, json) => {
      if (json === undefined || ticket.generation !== generation) return undefined
      const entry = { json, memo: undefined }
      entries.set(key, entry)
      return entry
    },
    dropPrefix: (prefix) => {
      for (const key of entries.keys()) if (key.startsWith(prefix)) entries.delete(key)
    },
    hit: () => void counts.hits++,
    miss: () => void counts.misses++,
    transition: () => undefined
  }
  return near
}

const at = (millis: number) => () => millis
const redis = (value: string | undefined): StoreEntry => ({ value, backend: "redis", degraded: false })

describe("the sealed envelope", () => {
  it("carries the writer's time and the end of freshness; anything else is not an envelope", () => {
    expect(unseal(seal("[1]", 1_000, 500))).toEqual({ writtenAt: 1_000, freshUntil: 1_500, json: "[1]" })
    expect(unseal("~1:x:2:{}")).toBeUndefined()
    expect(unseal("~2:1:2:{}")).toBeUndefined()
    expect(unseal("~1:12")).toBeUndefined()
  })
})

describe("ReadPipeline on node-local memory (LocalOnly)", () => {
  it("decodes an entry once and answers every read of it with one object, allocating nothing", () => {
    const memory = new Map<string, StoreEntry>([["k", { value: "7", backend: "local", degraded: false }]])
    const { calls, decode } = counting()
    const pipeline = new ReadPipeline<number>({ decode, shareDecoded: true, local: (key) => memory.get(key) })
    const first = pipeline.lookup("k", at(0), false)
    const second = pipeline.lookup("k", at(0), false)
    expect(first).toMatchObject({ _tag: "Found", value: 7, backend: "local", near: false, stale: false })
    expect(second).toBe(first)
    expect(calls.n).toBe(1)
    // a new write is a new entry object: decoded again
    memory.set("k", { value: "8", backend: "local", degraded: false })
    expect(pipeline.lookup("k", at(0), false)).toMatchObject({ value: 8 })
    expect(pipeline.lookup("k", at(0), false)).toMatchObject({ _tag: "Found", value: 8 })
    expect(calls.n).toBe(2)
    // without sharing (a Schema with transformations): decoded on every read
    const fresh = counting()
    const unshared = new ReadPipeline<number>({
      decode: fresh.decode,
      shareDecoded: false,
      local: (k) => memory.get(k)
    })
    unshared.lookup("k", at(0), false)
    unshared.lookup("k", at(0), false)
    expect(fresh.calls.n).toBe(2)
  })

  it("a miss and a corrupt entry never reach a store", () => {
    const memory = new Map<string, StoreEntry>([["bad", { value: '"text"', backend: "local", degraded: false }]])
    const pipeline = new ReadPipeline<number>({
      decode: counting().decode,
      shareDecoded: true,
      local: (k) => memory.get(k)
    })
    expect(pipeline.lookup("none", at(0), false)).toEqual({
      _tag: "Miss",
      backend: "local",
      degraded: false,
      invalid: undefined
    })
    const bad = pipeline.lookup("bad", at(0), false) as Read<number, unknown>
    expect(bad._tag).toBe("Miss")
    expect(bad._tag === "Miss" && bad.invalid?.reason).toBe("not a number")
  })

  it("a sealed entry is fresh with its age, then a miss, or stale for a caller that asked", () => {
    const memory = new Map<string, StoreEntry>([
      ["s", { value: seal("5", 1_000, 60_000), backend: "local", degraded: false }]
    ])
    const pipeline = new ReadPipeline<number>({
      decode: counting().decode,
      shareDecoded: true,
      local: (k) => memory.get(k)
    })
    expect(pipeline.lookup("s", at(11_000), false)).toMatchObject({
      value: 5,
      stale: false,
      ageMillis: 10_000,
      freshUntil: 61_000
    })
    expect(pipeline.lookup("s", at(61_000), false)).toMatchObject({ _tag: "Miss", invalid: undefined })
    expect(pipeline.lookup("s", at(61_000), true)).toMatchObject({ value: 5, stale: true, ageMillis: 60_000 })
    // a writer's clock ahead of ours: the age is never negative
    expect(pipeline.lookup("s", at(500), false)).toMatchObject({ stale: false, ageMillis: 0 })
    // the clock is read only for sealed entries
    memory.set("p", { value: "1", backend: "local", degraded: false })
    expect(
      pipeline.lookup(
        "p",
        () => {
          throw new Error("no clock needed")
        },
        false
      )
    ).toMatchObject({ value: 1 })
  })
})

describe("ReadPipeline in front of a store, with a near cache", () => {
  it("without a near cache every read is a round trip, and its answer is reported with its marks", () => {
    const pipeline = new ReadPipeline<number>({ decode: counting().decode, shareDecoded: true })
    const step = pipeline.lookup("k", at(0), false)
    expect(step).toBe(STORE)
    expect(pipeline.settle("k", STORE, redis("3"), at(0), false)).toMatchObject({
      value: 3,
      backend: "redis",
      near: false
    })
    expect(
      pipeline.settle("k", STORE, { value: "3", backend: "local_degraded", degraded: true }, at(0), false)
    ).toMatchObject({
      backend: "local_degraded",
      degraded: true
    })
    expect(pipeline.settle("k", STORE, redis(undefined), at(0), false)).toMatchObject({
      _tag: "Miss",
      backend: "redis"
    })
  })

  it("a clean Redis answer fills the near cache; the next read is a near hit sharing the decoded value", () => {
    const near = mapNear()
    const { calls, decode } = counting()
    const pipeline = new ReadPipeline<number>({ decode, shareDecoded: true, near })
    const step = pipeline.lookup("k", at(0), false)
    expect(isRead(step)).toBe(false)
    expect(near.counts.misses).toBe(1)
    const read = pipeline.settle("k", step as NearTicket, redis("4"), at(0), false)
    expect(read).toMatchObject({ value: 4, near: false })
    const hit = pipeline.lookup("k", at(0), false)
    expect(hit).toMatchObject({ _tag: "Found", value: 4, backend: "redis", near: true, stale: false })
    expect(pipeline.lookup("k", at(0), false)).toBe(hit)
    expect(near.counts.hits).toBe(2)
    expect(calls.n).toBe(1)
  })

  it("a fallback's answer, a failed read and an answer overtaken by a write are never kept near", () => {
    const near = mapNear()
    const pipeline = new ReadPipeline<number>({ decode: counting().decode, shareDecoded: true, near })
    const fallback = pipeline.lookup("a", at(0), false) as NearTicket
    pipeline.settle("a", fallback, { value: "1", backend: "local_degraded", degraded: true }, at(0), false)
    const failed = pipeline.lookup("b", at(0), false) as NearTicket
    pipeline.settle("b", failed, undefined, at(0), false)
    const overtaken = pipeline.lookup("c", at(0), false) as NearTicket
    const ticket = pipeline.beginWrite("c")
    pipeline.endWrite("c", ticket, undefined, undefined)
    pipeline.settle("c", overtaken, redis("1"), at(0), false)
    expect(near.entries.size).toBe(0)
    // an own write that reached Redis is kept at once
    const write = pipeline.beginWrite("d")
    pipeline.endWrite("d", write, "9", undefined)
    expect(pipeline.lookup("d", at(0), false)).toMatchObject({ value: 9, near: true })
  })

  it("a sealed near entry serves near within its freshness; past it, stale only when asked, else Redis answers", () => {
    const near = mapNear()
    const pipeline = new ReadPipeline<number>({ decode: counting().decode, shareDecoded: true, near })
    const write = pipeline.beginWrite("s")
    pipeline.endWrite("s", write, seal("6", 1_000, 1_000), 61_000)
    expect(pipeline.lookup("s", at(1_500), false)).toMatchObject({ value: 6, near: true, stale: false, ageMillis: 500 })
    expect(pipeline.lookup("s", at(2_500), true)).toMatchObject({ value: 6, near: true, stale: true, ageMillis: 1_500 })
    const past = pipeline.lookup("s", at(2_500), false)
    expect(isRead(past)).toBe(false)
    // Redis holds the same sealed entry: a miss for this caller
    expect(pipeline.settle("s", past as NearTicket, redis(seal("6", 1_000, 1_000)), at(2_500), false)).toMatchObject({
      _tag: "Miss",
      backend: "redis"
    })
  })
})
