/**
 * How the Redis store sends commands, on a real Redis: plain commands, the commands of one tick written together (one
 * read for Redis), each with its own reply or its own error in the order it was made, exactly as if sent alone.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Exit, Layer, Schema } from "effect"
import { Keyspace, RedisClient, strictDistributed } from "effect-failclosed"
import { Redis } from "ioredis"
import { evalScript, makeSender, scriptOf, toDecision } from "@effect-failclosed/core"
import { redisEffects, redisStoreOf } from "../src/internal/store.js"
import { startRedis, type RedisServer } from "./support/RedisServer.js"

let redis: RedisServer
let client: Redis

beforeAll(async () => {
  redis = await startRedis()
  client = new Redis(redis.url, { maxRetriesPerRequest: 0 })
  await client.ping()
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

/** how many times Redis read from its clients' sockets */
const readsProcessed = async (): Promise<number> =>
  Number(/total_reads_processed:(\d+)/.exec(await client.info("stats"))?.[1] ?? 0)

interface Settled {
  readonly error: unknown
  readonly reply: unknown
}

/** the store's sender over `client`, bounded by a deadline no test reaches */
const sender = () => makeSender(client, 60_000)

/** one command's outcome as a promise */
const outcome = (s: ReturnType<typeof sender>, name: string, args: ReadonlyArray<string | number>): Promise<Settled> =>
  new Promise((resolve) =>
    s.bound(
      () => s.command(name, args),
      (error, reply) => resolve({ error, reply })
    )
  )

const decide = (
  s: ReturnType<typeof sender>,
  algorithm: "fixed-window" | "sliding-window" | "token-bucket",
  key: string
) =>
  new Promise<Settled>((resolve) =>
    s.bound(
      () =>
        evalScript(
          s.command,
          scriptOf(algorithm),
          algorithm === "sliding-window" ? [key + ":l", key + ":m"] : [key],
          [2, 60_000, 1]
        ).then(toDecision),
      (error, reply) => resolve({ error, reply })
    )
  )

describe("the store's commands", () => {
  it("the commands of one tick leave together, run in call order, each with its own reply", async () => {
    const s = sender()
    await client.config("RESETSTAT")
    const results = await Promise.all([
      outcome(s, "set", ["cb:a", "1"]),
      outcome(s, "get", ["cb:a"]),
      outcome(s, "set", ["cb:a", "2", "PX", 60_000]),
      outcome(s, "get", ["cb:a"]),
      outcome(s, "unlink", ["cb:a"]),
      outcome(s, "get", ["cb:a"]),
      outcome(s, "unlink", ["cb:a"])
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
    // plain commands, no script
    expect(await calls("evalsha")).toBe(0)
    expect(await calls("unlink")).toBe(2)
    expect(await calls("get")).toBe(3)
  })

  it("commands sent on the client directly in the tick of held commands keep their own replies", async () => {
    const s = sender()
    await client.set("cb:d", "direct")
    // the first store command is written at once (nothing in flight); the later ones are held to the end of the tick,
    // while the client's own commands are written at once: each reply must still reach its own caller
    const results = await Promise.all([
      outcome(s, "set", ["cb:h", "held"]),
      client.get("cb:d"),
      outcome(s, "get", ["cb:h"]),
      client.get("cb:d"),
      outcome(s, "get", ["cb:d"]),
      client.get("cb:h")
    ])
    expect(results).toEqual([
      { error: undefined, reply: "OK" },
      "direct",
      { error: undefined, reply: "held" },
      "direct",
      { error: undefined, reply: "direct" },
      "held"
    ])
  })

  it("200 commands of one tick reach Redis in a few reads, not one read each", async () => {
    const s = sender()
    await client.config("RESETSTAT")
    const before = await readsProcessed()
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => outcome(s, "set", [`cb:r${i}`, String(i)])))
    expect(results.every((r) => r.error === undefined && r.reply === "OK")).toBe(true)
    // the INFO calls of this test are reads too
    expect((await readsProcessed()) - before).toBeLessThan(20)
  })

  it("a SET … PX sets the time to live", async () => {
    const s = sender()
    await Promise.all([outcome(s, "set", ["cb:ttl", "x", "PX", 30_000]), outcome(s, "set", ["cb:forever", "y"])])
    const ttl = await client.pttl("cb:ttl")
    expect(ttl).toBeGreaterThan(29_000)
    expect(ttl).toBeLessThanOrEqual(30_000)
    expect(await client.pttl("cb:forever")).toBe(-1)
  })

  it("an error is the failing call's own: WRONGTYPE fails one GET, the others of the tick succeed", async () => {
    await client.del("cb:list")
    await client.rpush("cb:list", "x")
    await client.set("cb:ok", "fine")
    const s = sender()
    const [before, wrong, after] = await Promise.all([
      outcome(s, "get", ["cb:ok"]),
      outcome(s, "get", ["cb:list"]),
      outcome(s, "get", ["cb:ok"])
    ])
    expect(before).toEqual({ error: undefined, reply: "fine" })
    expect(after).toEqual({ error: undefined, reply: "fine" })
    expect(wrong.reply).toBeUndefined()
    expect(wrong.error).toBeInstanceOf(Error)
    expect((wrong.error as Error).name).toBe("ReplyError")
    expect((wrong.error as Error).message).toMatch(/^WRONGTYPE/)
  })

  it("after SCRIPT FLUSH a script is loaded again (EVAL on NOSCRIPT)", async () => {
    const s = sender()
    await decide(s, "fixed-window", "cb:f")
    await client.script("FLUSH")
    await client.config("RESETSTAT")
    const results = await Promise.all([decide(s, "fixed-window", "cb:f"), outcome(s, "get", ["cb:nothing"])])
    expect(results).toEqual([
      { error: undefined, reply: { allowed: true, remaining: 0, retryAfterMillis: 0 } },
      { error: undefined, reply: null }
    ])
    expect(await calls("eval")).toBe(1)
  })

  it("large values of one tick are all answered", async () => {
    const s = sender()
    const big = "v".repeat(100 * 1024)
    const writes = Array.from({ length: 200 }, (_, i) => outcome(s, "set", [`cb:n${i}`, i < 5 ? big : String(i)]))
    expect((await Promise.all(writes)).every((r) => r.error === undefined && r.reply === "OK")).toBe(true)
    const reads = await Promise.all(Array.from({ length: 200 }, (_, i) => outcome(s, "get", [`cb:n${i}`])))
    expect(reads.map((r) => r.reply)).toEqual(Array.from({ length: 200 }, (_, i) => (i < 5 ? big : String(i))))
  })

  it("claims and rate-limit decisions of one tick each get their own reply or error", async () => {
    await client.del("cb:rl:list")
    await client.rpush("cb:rl:list", "x")
    const s = sender()
    const results = await Promise.all([
      outcome(s, "set", ["cb:nonce", "1", "PX", 60_000, "NX"]),
      outcome(s, "set", ["cb:nonce", "1", "PX", 60_000, "NX"]),
      decide(s, "fixed-window", "cb:rl:{a}"),
      decide(s, "sliding-window", "cb:rl:{b}"),
      decide(s, "token-bucket", "cb:rl:{c}"),
      decide(s, "fixed-window", "cb:rl:list"),
      decide(s, "fixed-window", "cb:rl:{a}"),
      decide(s, "fixed-window", "cb:rl:{a}"),
      outcome(s, "get", ["cb:nonce"])
    ])
    expect(results[0]).toEqual({ error: undefined, reply: "OK" })
    expect(results[1]).toEqual({ error: undefined, reply: null })
    expect(results[2]).toEqual({ error: undefined, reply: { allowed: true, remaining: 1, retryAfterMillis: 0 } })
    expect(results[3]).toEqual({ error: undefined, reply: { allowed: true, remaining: 1, retryAfterMillis: 0 } })
    expect(results[4]).toEqual({ error: undefined, reply: { allowed: true, remaining: 1, retryAfterMillis: 0 } })
    // the decision over a key of another type fails alone
    expect((results[5]!.error as Error).message).toMatch(/WRONGTYPE/)
    expect(results[6]).toEqual({ error: undefined, reply: { allowed: true, remaining: 0, retryAfterMillis: 0 } })
    expect((results[7]!.reply as { allowed: boolean }).allowed).toBe(false)
    expect(results[8]).toEqual({ error: undefined, reply: "1" })
    // the decisions' keys have their time to live, as alone
    expect(await client.pttl("cb:rl:{a}")).toBeGreaterThan(0)
    expect(await client.pttl("cb:rl:{b}:l")).toBeGreaterThan(0)
    expect(await client.pttl("cb:nonce")).toBeGreaterThan(59_000)
  })

  it("a lone call is sent as its own command", async () => {
    await client.config("RESETSTAT")
    const s = sender()
    expect(await outcome(s, "set", ["cb:lone", "1", "PX", 1_000])).toEqual({ error: undefined, reply: "OK" })
    expect(await outcome(s, "get", ["cb:lone"])).toEqual({ error: undefined, reply: "1" })
    expect(await calls("evalsha")).toBe(0)
    expect(await calls("set")).toBe(1)
    expect(await calls("get")).toBe(1)
  })

  it.effect("a store command has one deadline, the store's: ioredis arms no timer of its own for it", () =>
    Effect.gen(function* () {
      const redisClient = yield* RedisClient
      const c = redisClient.client as Redis
      yield* Effect.orDie(redisClient.awaitReady(Duration.seconds(2)))
      const sent: Array<unknown> = []
      const original = c.sendCommand.bind(c)
      c.sendCommand = (command, stream) => {
        const result = original(command, stream)
        // ioredis arms its per-command timer when the command is sent
        sent.push((command as unknown as { _commandTimeoutTimer?: unknown })._commandTimeoutTimer)
        return result
      }
      yield* redisEffects(redisStoreOf(redisClient)).get("cb:timer")
      yield* Effect.promise(() => c.get("cb:timer"))
      // the store's GET, then the direct GET (which keeps ioredis' timer, the client's commandTimeout + 2 s)
      expect(sent).toHaveLength(2)
      expect(sent[0]).toBeUndefined()
      expect(sent[1]).toBeDefined()
    }).pipe(
      Effect.provide(Layer.suspend(() => RedisClient.layer({ url: redis.url, commandTimeout: "2 seconds" }))),
      Effect.scoped
    )
  )

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
