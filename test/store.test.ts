/**
 * The store floor: the memory store and the Redis store answer every operation of the one `Store` interface alike
 * (same results for the same calls), including the lock operations features build on.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, TestClock } from "effect"
import { RedisClient } from "effect-failclosed"
import { makeMemoryStore } from "@effect-failclosed/core"
import { memoryEffects, redisEffects, redisStoreOf, type Store } from "../src/internal/store.js"
import { redisServer } from "./support/RedisServer.js"

const memory = Effect.map(Effect.clock, (clock): Store<never> =>
  memoryEffects(makeMemoryStore({ capacity: 100, now: () => clock.unsafeCurrentTimeMillis() }))
)

const redis = Effect.gen(function* () {
  const server = yield* redisServer()
  const client = yield* RedisClient.make({ url: server.url })
  yield* Effect.orDie(client.awaitReady(client.startupTimeout))
  return redisEffects(redisStoreOf(client)) as Store<unknown>
})

const stores = { memory, redis } as const

describe.each(Object.keys(stores) as Array<keyof typeof stores>)("the %s store", (name) => {
  const store = stores[name]

  it.scoped("get, set and invalidate: invalidate answers whether there was an entry", () =>
    Effect.gen(function* () {
      const s = yield* store
      expect(yield* s.get("st:a")).toBeNull()
      yield* s.set("st:a", "1", undefined)
      yield* s.set("st:b", "2", 60_000)
      expect(yield* s.get("st:a")).toBe("1")
      expect(yield* s.invalidate("st:a")).toBe(true)
      expect(yield* s.invalidate("st:a")).toBe(false)
      expect(yield* s.get("st:a")).toBeNull()
      expect(yield* s.count("st:")).toBe(1)
      expect(yield* s.clear("st:")).toBe(1)
      expect(yield* s.get("st:b")).toBeNull()
    })
  )

  it.scoped("claim succeeds once per key until its time to live ends", () =>
    Effect.gen(function* () {
      const s = yield* store
      expect(yield* s.claim("st:n", 60_000)).toBe(true)
      expect(yield* s.claim("st:n", 60_000)).toBe(false)
    })
  )

  it.scoped("a lock is taken once, and only its owner's token releases it", () =>
    Effect.gen(function* () {
      const s = yield* store
      expect(yield* s.acquireLock("st:lock", "owner-1", 60_000)).toBe(true)
      expect(yield* s.acquireLock("st:lock", "owner-2", 60_000)).toBe(false)
      expect(yield* s.releaseLock("st:lock", "owner-2")).toBe(false)
      expect(yield* s.acquireLock("st:lock", "owner-2", 60_000)).toBe(false)
      expect(yield* s.releaseLock("st:lock", "owner-1")).toBe(true)
      expect(yield* s.releaseLock("st:lock", "owner-1")).toBe(false)
      expect(yield* s.acquireLock("st:lock", "owner-2", 60_000)).toBe(true)
    })
  )
})

describe("lock expiry", () => {
  it.effect("a lock ends with its time to live (memory, by Effect's Clock)", () =>
    Effect.gen(function* () {
      const s = yield* memory
      expect(yield* s.acquireLock("st:lock", "owner-1", 1_000)).toBe(true)
      yield* TestClock.adjust("999 millis")
      expect(yield* s.acquireLock("st:lock", "owner-2", 1_000)).toBe(false)
      yield* TestClock.adjust("1 millis")
      expect(yield* s.acquireLock("st:lock", "owner-2", 1_000)).toBe(true)
      expect(yield* s.releaseLock("st:lock", "owner-1")).toBe(false)
    })
  )

  it.scopedLive("a lock ends with its time to live (Redis, PX)", () =>
    Effect.gen(function* () {
      const s = yield* redis
      expect(yield* s.acquireLock("st:lock", "owner-1", 50)).toBe(true)
      yield* Effect.sleep("120 millis")
      expect(yield* s.acquireLock("st:lock", "owner-2", 60_000)).toBe(true)
      expect(yield* s.releaseLock("st:lock", "owner-1")).toBe(false)
    })
  )
})
