/**
 * Command coalescing on a real Redis: the GET, SET and UNLINK calls of one tick leave as one script call, run in the
 * order they were made, and each gets its own reply or its own error, exactly as if it had been sent alone.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Exit, Layer, Schema } from "effect"
import { Keyspace, RedisClient, strictDistributed } from "effect-failclosed"
import { Redis } from "ioredis"
import { makeCommandBatch } from "../src/internal/redis/commandBatch.js"
import { startRedis, type RedisServer } from "./support/RedisServer.js"

let redis: RedisServer
let client: Redis

beforeAll(async () => {
  redis = await startRedis()
  client = new Redis(redis.url, { enableAutoPipelining: true, maxRetriesPerRequest: 0 })
})
afterAll(async () => {
  client.disconnect()
  await redis.stop()
})

/** calls of one command name, from INFO commandstats (commands a script runs count too) */
const calls = async (command: string): Promise<number> => {
  const info = await client.info("commandstats")
  return Number(new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(info)?.[1] ?? 0)
}

/** the batcher over `client`, each command bounded by nothing but the test's own timeout */
const batch = () =>
  makeCommandBatch(client, (send, settle) => {
    send().then(
      (reply) => settle(undefined, reply),
      (error: unknown) => settle(error, undefined)
    )
  })

interface Settled {
  readonly error: unknown
  readonly reply: unknown
}

/** one call's outcome as a promise */
const outcome = (start: (done: (error: unknown, reply: unknown) => void) => void): Promise<Settled> =>
  new Promise((resolve) => start((error, reply) => resolve({ error, reply })))

describe("command batch", () => {
  it("the calls of one tick run as one script, in call order, each with its own reply", async () => {
    await client.config("RESETSTAT")
    const b = batch()
    const results = await Promise.all([
      outcome((done) => b.set("cb:a", "1", undefined, done)),
      outcome((done) => b.get("cb:a", done)),
      outcome((done) => b.set("cb:a", "2", 60_000, done)),
      outcome((done) => b.get("cb:a", done)),
      outcome((done) => b.invalidate("cb:a", done)),
      outcome((done) => b.get("cb:a", done)),
      outcome((done) => b.invalidate("cb:a", done))
    ])
    expect(results).toEqual([
      { error: undefined, reply: "OK" },
      { error: undefined, reply: "1" },
      { error: undefined, reply: "OK" },
      { error: undefined, reply: "2" },
      { error: undefined, reply: 1 },
      { error: undefined, reply: null },
      { error: undefined, reply: 0 }
    ])
    // one EVALSHA (an EVAL first if the script was not cached), no command of its own per call
    expect((await calls("evalsha")) + (await calls("eval"))).toBeLessThanOrEqual(2)
    expect(await calls("evalsha")).toBeGreaterThanOrEqual(1)
    expect(await calls("unlink")).toBe(2)
  })

  it("a SET … PX in a batch sets the time to live", async () => {
    const b = batch()
    await Promise.all([
      outcome((done) => b.set("cb:ttl", "x", 30_000, done)),
      outcome((done) => b.set("cb:forever", "y", undefined, done))
    ])
    const ttl = await client.pttl("cb:ttl")
    expect(ttl).toBeGreaterThan(29_000)
    expect(ttl).toBeLessThanOrEqual(30_000)
    expect(await client.pttl("cb:forever")).toBe(-1)
  })

  it("an error is the failing call's own: WRONGTYPE fails one GET, the others of the batch succeed", async () => {
    await client.del("cb:list")
    await client.rpush("cb:list", "x")
    await client.set("cb:ok", "fine")
    const b = batch()
    const [before, wrong, after] = await Promise.all([
      outcome((done) => b.get("cb:ok", done)),
      outcome((done) => b.get("cb:list", done)),
      outcome((done) => b.get("cb:ok", done))
    ])
    expect(before).toEqual({ error: undefined, reply: "fine" })
    expect(after).toEqual({ error: undefined, reply: "fine" })
    expect(wrong.reply).toBeUndefined()
    expect(wrong.error).toBeInstanceOf(Error)
    expect((wrong.error as Error).name).toBe("ReplyError")
    expect((wrong.error as Error).message).toMatch(/^WRONGTYPE/)
  })

  it("after SCRIPT FLUSH the batch loads its script again (EVAL on NOSCRIPT)", async () => {
    const b = batch()
    await Promise.all([outcome((done) => b.set("cb:f", "1", undefined, done)), outcome((done) => b.get("cb:f", done))])
    await client.script("FLUSH")
    const results = await Promise.all([
      outcome((done) => b.set("cb:f", "2", undefined, done)),
      outcome((done) => b.get("cb:f", done))
    ])
    expect(results).toEqual([
      { error: undefined, reply: "OK" },
      { error: undefined, reply: "2" }
    ])
  })

  it("more calls than one command takes, and large values, are split into several commands, all answered", async () => {
    await client.config("RESETSTAT")
    const b = batch()
    const big = "v".repeat(100 * 1024)
    const writes = Array.from({ length: 200 }, (_, i) =>
      outcome((done) => b.set(`cb:n${i}`, i < 5 ? big : String(i), undefined, done))
    )
    expect((await Promise.all(writes)).every((r) => r.error === undefined && r.reply === "OK")).toBe(true)
    const reads = await Promise.all(Array.from({ length: 200 }, (_, i) => outcome((done) => b.get(`cb:n${i}`, done))))
    expect(reads.map((r) => r.reply)).toEqual(Array.from({ length: 200 }, (_, i) => (i < 5 ? big : String(i))))
    // 64 calls at most per command, and at most 256 KiB of values: more than one command each time
    expect(await calls("evalsha")).toBeGreaterThanOrEqual(2 + 4)
  })

  it("claims and rate-limit decisions share the batch, each with its own reply or error", async () => {
    await client.del("cb:rl:list")
    await client.rpush("cb:rl:list", "x")
    await client.config("RESETSTAT")
    const b = batch()
    const request = (algorithm: "fixed-window" | "sliding-window" | "token-bucket", key: string) => ({
      algorithm,
      key,
      limit: 2,
      windowMillis: 60_000,
      cost: 1
    })
    const results = await Promise.all([
      outcome((done) => b.claim("cb:nonce", 60_000, done)),
      outcome((done) => b.claim("cb:nonce", 60_000, done)),
      outcome((done) => b.rateLimit(request("fixed-window", "cb:rl:{a}"), done)),
      outcome((done) => b.rateLimit(request("sliding-window", "cb:rl:{b}"), done)),
      outcome((done) => b.rateLimit(request("token-bucket", "cb:rl:{c}"), done)),
      outcome((done) => b.rateLimit(request("fixed-window", "cb:rl:list"), done)),
      outcome((done) => b.rateLimit(request("fixed-window", "cb:rl:{a}"), done)),
      outcome((done) => b.rateLimit(request("fixed-window", "cb:rl:{a}"), done)),
      outcome((done) => b.get("cb:nonce", done))
    ])
    expect(results[0]).toEqual({ error: undefined, reply: "OK" })
    expect(results[1]).toEqual({ error: undefined, reply: null })
    expect(results[2]).toEqual({ error: undefined, reply: { allowed: true, remaining: 1, retryAfter: Duration.zero } })
    expect(results[3]).toEqual({ error: undefined, reply: { allowed: true, remaining: 1, retryAfter: Duration.zero } })
    expect(results[4]).toEqual({ error: undefined, reply: { allowed: true, remaining: 1, retryAfter: Duration.zero } })
    // the decision over a key of another type fails alone
    expect((results[5]!.error as Error).message).toMatch(/WRONGTYPE/)
    expect(results[6]).toEqual({ error: undefined, reply: { allowed: true, remaining: 0, retryAfter: Duration.zero } })
    expect((results[7]!.reply as { allowed: boolean }).allowed).toBe(false)
    expect(results[8]).toEqual({ error: undefined, reply: "1" })
    expect(await calls("evalsha")).toBeGreaterThanOrEqual(1)
    expect((await calls("evalsha")) + (await calls("eval"))).toBeLessThanOrEqual(2)
    // the decisions' keys have their time to live, as alone
    expect(await client.pttl("cb:rl:{a}")).toBeGreaterThan(0)
    expect(await client.pttl("cb:rl:{b}:l")).toBeGreaterThan(0)
    expect(await client.pttl("cb:nonce")).toBeGreaterThan(59_000)
  })

  it("a lone call is sent as its own command", async () => {
    await client.config("RESETSTAT")
    const b = batch()
    expect(await outcome((done) => b.set("cb:lone", "1", 1_000, done))).toEqual({ error: undefined, reply: "OK" })
    expect(await outcome((done) => b.get("cb:lone", done))).toEqual({ error: undefined, reply: "1" })
    expect(await calls("evalsha")).toBe(0)
    expect(await calls("set")).toBe(1)
    expect(await calls("get")).toBe(1)
  })

  const Items = Keyspace.make({
    name: "cb-items",
    key: Schema.Number,
    value: Schema.Struct({ n: Schema.Number }),
    timeToLive: "1 minute"
  })

  it.effect("through a keyspace: 500 concurrent writes and reads of 100 keys agree with what was written", () =>
    Effect.gen(function* () {
      yield* Items.clear()
      yield* Effect.forEach(
        Array.from({ length: 100 }, (_, i) => i),
        (i) => Items.set(i, { n: i }),
        {
          concurrency: "unbounded"
        }
      )
      const read = yield* Effect.forEach(
        Array.from({ length: 500 }, (_, i) => i % 100),
        (i) => Effect.map(Items.get(i), (o) => (o._tag === "Some" ? o.value.value.n : -1)),
        { concurrency: "unbounded" }
      )
      expect(read).toEqual(Array.from({ length: 500 }, (_, i) => i % 100))
      const deleted = yield* Effect.forEach(
        Array.from({ length: 100 }, (_, i) => i),
        (i) => Items.invalidate(i),
        {
          concurrency: "unbounded"
        }
      )
      expect(deleted.every((d) => d)).toBe(true)
      const again = yield* Effect.forEach(
        Array.from({ length: 100 }, (_, i) => i),
        (i) => Items.invalidate(i),
        {
          concurrency: "unbounded"
        }
      )
      expect(again.some((d) => d)).toBe(false)
    }).pipe(
      Effect.provide(
        Layer.suspend(() => strictDistributed().pipe(Layer.provide(RedisClient.layer({ url: redis.url }))))
      )
    )
  )

  it.effect(
    "through a keyspace: a WRONGTYPE key fails its own read closed, concurrent reads of other keys succeed",
    () =>
      Effect.gen(function* () {
        yield* Items.set(1, { n: 1 })
        yield* Items.set(2, { n: 2 })
        // the store key of 3, found by writing it, now holds a list
        yield* Items.set(3, { n: 3 })
        const keys = yield* Effect.promise(() => client.keys("fc:*"))
        const values = yield* Effect.promise(() => Promise.all(keys.map((k) => client.get(k))))
        const key3 = keys[values.indexOf('{"n":3}')]!
        yield* Effect.promise(() => client.del(key3).then(() => client.rpush(key3, "x")))
        const [one, three, two] = yield* Effect.all([Items.get(1), Effect.exit(Items.get(3)), Items.get(2)], {
          concurrency: "unbounded"
        })
        expect(one._tag === "Some" && one.value.value).toEqual({ n: 1 })
        expect(two._tag === "Some" && two.value.value).toEqual({ n: 2 })
        expect(Exit.isFailure(three)).toBe(true)
        expect(JSON.stringify(three)).toMatch(/WRONGTYPE/)
      }).pipe(
        Effect.provide(
          Layer.suspend(() => strictDistributed().pipe(Layer.provide(RedisClient.layer({ url: redis.url }))))
        )
      )
  )
})
