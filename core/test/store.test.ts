/**
 * The core's stores and breaker, without Effect: the memory store answers synchronously with time from the `now` it is
 * given, the Redis store answers each call once through its callback (a value, or a StoreFailure: never a throw), and
 * the breaker's cooldown runs on the `now` it is given. The Redis store runs against a real redis-server (the
 * repository's harness starts it on a free loopback port).
 */
import { Redis } from "ioredis"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import {
  Breaker,
  CLOSED,
  type Done,
  makeMemoryStore,
  makeRedisStore,
  OPEN,
  PROBE,
  type RedisStore,
  StoreFailure
} from "../src/index.js"
import { type RedisServer, startRedis } from "../../test/support/RedisServer.js"

describe("memory store", () => {
  it("answers synchronously, and its time is the `now` it is given", () => {
    let now = 1_000
    const store = makeMemoryStore({ capacity: 2, now: () => now })
    expect(store.get("a")).toBeNull()
    store.set("a", "1", 100)
    store.set("b", "2", undefined)
    expect(store.get("a")).toBe("1")
    expect(store.read("a")).toBe(store.read("a"))
    now += 100
    expect(store.get("a")).toBeNull()
    expect(store.claim("n", 50)).toBe(true)
    expect(store.claim("n", 50)).toBe(false)
    now += 50
    expect(store.claim("n", 50)).toBe(true)
    // capacity 2: the least recently used goes
    store.set("c", "3", undefined)
    expect(store.size()).toBe(2)
    const limit = { key: "rl", algorithm: "fixed-window", limit: 1, windowMillis: 1_000, cost: 1 } as const
    expect(store.rateLimit(limit).allowed).toBe(true)
    expect(store.rateLimit(limit)).toEqual({ allowed: false, remaining: 0, retryAfterMillis: expect.any(Number) })
    store.reset()
    expect(store.size()).toBe(0)
    expect(store.rateLimit(limit).allowed).toBe(true)
  })
})

describe("breaker", () => {
  it("opens on a failure, refuses until the cooldown of its `now` has passed, then admits one probe", () => {
    let now = 0
    const breaker = new Breaker(() => now, 500)
    expect(breaker.admit()).toBe(CLOSED)
    expect(breaker.failed(breaker.generation, false)).toBe(true)
    expect(breaker.admit()).toBe(OPEN)
    now = 499
    expect(breaker.admit()).toBe(OPEN)
    now = 500
    expect(breaker.admit()).toBe(PROBE)
    expect(breaker.admit()).toBe(OPEN)
    expect(breaker.probeSucceeded()).toBe(true)
    expect(breaker.admit()).toBe(CLOSED)
  })
})

describe("Redis store (callbacks, real redis-server)", () => {
  let server: RedisServer
  let client: Redis
  let store: RedisStore

  beforeAll(async () => {
    server = await startRedis()
    client = new Redis(server.url, { maxRetriesPerRequest: 0 })
    await client.ping()
    store = makeRedisStore(client, { commandTimeoutMillis: 2_000, describeError: () => "redacted" })
  })
  afterAll(async () => {
    client.disconnect()
    await server.stop()
  })

  /** one call's outcome, and how many times its callback was called (once, or the store is wrong) */
  const outcome = <A>(call: (done: Done<A>) => void) =>
    new Promise<{ failure: StoreFailure | undefined; value: A }>((resolve) => {
      let calls = 0
      call((failure, value) => {
        calls++
        setTimeout(() => {
          expect(calls).toBe(1)
          resolve({ failure, value })
        }, 20)
      })
    })

  it("answers each operation once through its callback", async () => {
    expect(await outcome<string | null>((done) => store.get("cs:a", done))).toEqual({ failure: undefined, value: null })
    expect((await outcome<void>((done) => store.set("cs:a", "1", 60_000, done))).failure).toBeUndefined()
    expect(await outcome<string | null>((done) => store.get("cs:a", done))).toEqual({ failure: undefined, value: "1" })
    expect(await outcome<number>((done) => store.count("cs:", done))).toEqual({ failure: undefined, value: 1 })
    expect(await outcome<boolean>((done) => store.claim("cs:n", 60_000, done))).toEqual({
      failure: undefined,
      value: true
    })
    expect(await outcome<boolean>((done) => store.claim("cs:n", 60_000, done))).toEqual({
      failure: undefined,
      value: false
    })
    expect(await outcome<boolean>((done) => store.acquireLock("cs:l", "t1", 60_000, done))).toEqual({
      failure: undefined,
      value: true
    })
    expect(await outcome<boolean>((done) => store.releaseLock("cs:l", "t2", done))).toEqual({
      failure: undefined,
      value: false
    })
    expect(await outcome<boolean>((done) => store.releaseLock("cs:l", "t1", done))).toEqual({
      failure: undefined,
      value: true
    })
    const limit = { key: "cs:{rl}", algorithm: "token-bucket", limit: 1, windowMillis: 60_000, cost: 1 } as const
    expect((await outcome((done) => store.rateLimit(limit, done))).value).toEqual({
      allowed: true,
      remaining: 0,
      retryAfterMillis: 0
    })
    expect(await outcome<number>((done) => store.clear("cs:", done))).toEqual({ failure: undefined, value: 3 })
  })

  it("turns a reply error into a `rejected` failure with a secret-free reason, never a throw", async () => {
    await client.lpush("cs:list", "x")
    const { failure } = await outcome<string | null>((done) => store.get("cs:list", done))
    expect(failure).toBeInstanceOf(StoreFailure)
    expect(failure).toEqual(new StoreFailure("rejected", "redacted"))
  })

  it("fails `unavailable` with reason `timeout` when Redis does not answer within the command timeout", async () => {
    const slow = makeRedisStore(client, { commandTimeoutMillis: 50, describeError: () => "redacted" })
    server.pause()
    try {
      const { failure } = await outcome<string | null>((done) => slow.get("cs:a", done))
      expect(failure).toEqual(new StoreFailure("unavailable", "timeout"))
    } finally {
      server.resume()
    }
  })
})
