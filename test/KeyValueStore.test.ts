import { createHash } from "node:crypto"
import { KeyValueStore as PlatformKeyValueStore } from "@effect/platform"
import type { PlatformError } from "@effect/platform/Error"
import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit, Layer, Option, Schema, TestClock } from "effect"
import {
  DistributedCache,
  explicitDegraded,
  Keyspace,
  KeyValueStore,
  LocalOnly,
  localOnly,
  RedisClient,
  strictDistributed
} from "effect-failclosed"
import { type RedisServer, redisServer } from "./support/RedisServer.js"

const Store = PlatformKeyValueStore.KeyValueStore

/** the failure of an exit, asserting it is a failure (not a defect, not an interruption) */
const failureOf = (exit: Exit.Exit<unknown, PlatformError>): PlatformError => {
  if (Exit.isSuccess(exit)) throw new Error(`expected a failure, got a success: ${JSON.stringify(exit.value)}`)
  const failure = Cause.failureOption(exit.cause)
  if (Option.isNone(failure)) throw new Error(`expected a failure, got ${Cause.pretty(exit.cause)}`)
  return failure.value
}

/** the store and, for comparison, the cache below it */
const storeOn = <E, R>(
  cache: Layer.Layer<DistributedCache, E, R>,
  options?: Partial<KeyValueStore.KeyValueStoreOptions>
) => KeyValueStore.layer({ name: "sessions", ...options }).pipe(Layer.provideMerge(cache))

/** the behaviour every mode must have while its backend answers */
const roundTrip = Effect.gen(function* () {
  const store = yield* Store
  expect(yield* store.get("a")).toEqual(Option.none())
  expect(yield* store.has("a")).toBe(false)

  yield* store.set("a", "1")
  yield* store.set("b", "two")
  yield* store.set("b", "2")
  expect(yield* store.get("a")).toEqual(Option.some("1"))
  expect(yield* store.get("b")).toEqual(Option.some("2"))
  expect(yield* store.has("a")).toBe(true)

  expect(yield* store.modify("a", (v) => v + "!")).toEqual(Option.some("1!"))
  expect(yield* store.modify("missing", (v) => v + "!")).toEqual(Option.none())
  expect(yield* store.get("a")).toEqual(Option.some("1!"))

  yield* store.remove("a")
  yield* store.remove("a")
  expect(yield* store.get("a")).toEqual(Option.none())
  expect(yield* store.get("b")).toEqual(Option.some("2"))

  yield* store.clear
  expect(yield* store.get("b")).toEqual(Option.none())
  expect(yield* store.has("b")).toBe(false)
})

/** size and isEmpty count this store's live entries, and nothing else in the same cache */
const sizeCounts = Effect.gen(function* () {
  const store = yield* Store
  const other = yield* KeyValueStore.make({ name: "other" })
  const Sessions = Keyspace.make({ name: "sessions", key: Schema.String, value: Schema.String, timeToLive: "1 hour" })
  yield* other.set("a", "x")
  yield* Sessions.set("a", "x")
  expect(yield* store.size).toBe(0)
  expect(yield* store.isEmpty).toBe(true)
  yield* store.set("a", "1")
  yield* store.set("b", "2")
  yield* store.set("b", "3")
  expect(yield* store.size).toBe(2)
  expect(yield* store.isEmpty).toBe(false)
  yield* store.remove("a")
  expect(yield* store.size).toBe(1)
  yield* store.clear
  expect(yield* store.size).toBe(0)
  expect(yield* other.size).toBe(1)
})

/** keys no naive layout survives: separators, glob characters, the empty key, lone surrogates */
const awkwardKeys = ["", ":", "*", "a:b", "a*", "[x]", "\\", "~kv", "\ud800", "\udc00", "é", "🙂", "x".repeat(10_000)]

const awkwardKeysAreDistinct = Effect.gen(function* () {
  const store = yield* Store
  for (const [i, key] of awkwardKeys.entries()) yield* store.set(key, String(i))
  for (const [i, key] of awkwardKeys.entries()) expect(yield* store.get(key)).toEqual(Option.some(String(i)))
})

describe("KeyValueStore on LocalOnly", () => {
  it.effect("reads back what it wrote; remove and clear delete what get sees", () =>
    roundTrip.pipe(Effect.provide(storeOn(LocalOnly)))
  )

  it.effect("counts its own live entries in size and isEmpty, and nothing else in the cache", () =>
    Effect.gen(function* () {
      yield* sizeCounts
      const store = yield* Store
      yield* store.set("short", "lived")
      expect(yield* store.size).toBe(1)
      yield* TestClock.adjust("61 seconds")
      expect(yield* store.size).toBe(0)
    }).pipe(Effect.provide(storeOn(LocalOnly, { timeToLive: "1 minute" })))
  )

  it.effect("keeps keys with separators, glob characters and lone surrogates apart", () =>
    awkwardKeysAreDistinct.pipe(Effect.provide(storeOn(LocalOnly)))
  )

  it.effect("round-trips binary values; a binary value read as a string is its base64, like layerMemory", () =>
    Effect.gen(function* () {
      const store = yield* Store
      const bytes = new Uint8Array([0, 1, 2, 250, 255])
      yield* store.set("bin", bytes)
      expect(yield* store.getUint8Array("bin")).toEqual(Option.some(bytes))
      expect(yield* store.get("bin")).toEqual(Option.some(Buffer.from(bytes).toString("base64")))
      yield* store.set("text", "héllo")
      expect(yield* store.getUint8Array("text")).toEqual(Option.some(new TextEncoder().encode("héllo")))
      expect(yield* store.modifyUint8Array("bin", (b) => b.map((x) => 255 - x))).toEqual(
        Option.some(new Uint8Array([255, 254, 253, 5, 0]))
      )
    }).pipe(Effect.provide(storeOn(LocalOnly)))
  )

  it.effect("expires every entry after the store's timeToLive, driven by TestClock", () =>
    Effect.gen(function* () {
      const store = yield* Store
      yield* store.set("token", "t")
      yield* TestClock.adjust("59 seconds")
      expect(yield* store.get("token")).toEqual(Option.some("t"))
      yield* TestClock.adjust("2 seconds")
      expect(yield* store.get("token")).toEqual(Option.none())
    }).pipe(Effect.provide(storeOn(LocalOnly, { timeToLive: "1 minute" })))
  )

  it.effect("keeps no expiry by default", () =>
    Effect.gen(function* () {
      const store = yield* Store
      yield* store.set("k", "v")
      yield* TestClock.adjust("3650 days")
      expect(yield* store.get("k")).toEqual(Option.some("v"))
    }).pipe(Effect.provide(storeOn(LocalOnly)))
  )

  it.effect("never shares entries with another store name or with a Keyspace of the same name", () =>
    Effect.gen(function* () {
      const Sessions = Keyspace.make({
        name: "sessions",
        key: Schema.String,
        value: Schema.String,
        timeToLive: "1 hour"
      })
      const sessions = yield* KeyValueStore.make({ name: "sessions" })
      const other = yield* KeyValueStore.make({ name: "sessions2" })
      yield* sessions.set("k", "kv")
      yield* other.set("k", "other")
      yield* Sessions.set("k", "keyspace")
      expect(yield* sessions.get("k")).toEqual(Option.some("kv"))
      expect(yield* other.get("k")).toEqual(Option.some("other"))

      yield* sessions.clear
      expect(yield* sessions.get("k")).toEqual(Option.none())
      expect(yield* other.get("k")).toEqual(Option.some("other"))
      expect(Option.map(yield* Sessions.get("k"), (c) => c.value)).toEqual(Option.some("keyspace"))

      yield* sessions.set("k", "kv")
      yield* Sessions.clear({ allTenants: true })
      expect(yield* sessions.get("k")).toEqual(Option.some("kv"))
    }).pipe(Effect.provide(LocalOnly))
  )

  it.effect("supports the platform's SchemaStore", () =>
    Effect.gen(function* () {
      const store = yield* Store
      const users = store.forSchema(Schema.Struct({ name: Schema.String, visits: Schema.Number }))
      yield* users.set("u1", { name: "Ada", visits: 1 })
      expect(yield* users.modify("u1", (u) => ({ ...u, visits: u.visits + 1 }))).toEqual(
        Option.some({ name: "Ada", visits: 2 })
      )
      expect(yield* users.get("u1")).toEqual(Option.some({ name: "Ada", visits: 2 }))
    }).pipe(Effect.provide(storeOn(LocalOnly)))
  )

  it.effect("rejects a value over maxValueBytes or with a lone surrogate as BadArgument, writing nothing", () =>
    Effect.gen(function* () {
      const store = yield* Store
      const tooBig = failureOf(yield* Effect.exit(store.set("k", "é".repeat(6))))
      expect(tooBig._tag).toBe("BadArgument")
      expect(tooBig.message).toContain("larger than 10 bytes")
      const surrogate = failureOf(yield* Effect.exit(store.set("k", "a\ud800b")))
      expect(surrogate._tag).toBe("BadArgument")
      expect(surrogate.message).toContain("lone surrogate")
      expect(yield* store.has("k")).toBe(false)
      yield* store.set("k", "é".repeat(5))
      // 7 bytes are 12 characters of base64: over the limit
      expect(failureOf(yield* Effect.exit(store.set("b", new Uint8Array(7))))._tag).toBe("BadArgument")
      expect(yield* store.has("k")).toBe(true)
      expect(yield* store.has("b")).toBe(false)
    }).pipe(Effect.provide(storeOn(LocalOnly, { maxValueBytes: 10 })))
  )

  it.effect("fails an entry it did not write with InvalidData instead of returning it", () =>
    Effect.gen(function* () {
      const store = yield* Store
      const cache = yield* DistributedCache
      // a raw write under the store's documented key layout
      yield* cache.set(yield* rawKeyOf(cache, "k"), "not tagged", undefined)
      const error = failureOf(yield* Effect.exit(store.get("k")))
      expect(error._tag === "SystemError" && error.reason).toBe("InvalidData")
    }).pipe(Effect.provide(storeOn(LocalOnly)))
  )

  it("throws synchronously on invalid options, before anything runs", () => {
    expect(() => KeyValueStore.layer({ name: "" })).toThrow(/name must be a string of 1 to 128/)
    expect(() => KeyValueStore.layer({ name: "x".repeat(129) })).toThrow(/name/)
    expect(() => KeyValueStore.make({ name: "s", timeToLive: "0 millis" })).toThrow(/timeToLive must be positive/)
    expect(() => KeyValueStore.make({ name: "s", timeToLive: "soon" as never })).toThrow(/not a duration/)
    expect(() => KeyValueStore.make({ name: "s", maxValueBytes: 0 })).toThrow(/maxValueBytes/)
  })
})

/** the store key of `key` in the store "sessions": `<keyPrefix>:v:sessions:-:<144 bits of the sha256 of the key's JSON>` */
const rawKeyOf = (cache: DistributedCache["Type"], key: string) =>
  Effect.sync(
    () =>
      `${cache.keyPrefix}:v:sessions:-:${createHash("sha256").update(JSON.stringify(key)).digest("base64url").slice(0, 24)}`
  )

const clientFor = (redis: RedisServer) =>
  RedisClient.layer({ url: redis.url, commandTimeout: "250 millis", connectTimeout: "250 millis" })

const strictStore = (redis: RedisServer, options?: Partial<KeyValueStore.KeyValueStoreOptions>) =>
  storeOn(
    strictDistributed({ keyPrefix: "kvtest", cooldown: "200 millis" }).pipe(Layer.provide(clientFor(redis))),
    options
  )

const expectUnavailable = (exit: Exit.Exit<unknown, PlatformError>, method: string) => {
  const error = failureOf(exit)
  expect(error._tag).toBe("SystemError")
  if (error._tag !== "SystemError") return
  expect(error.module).toBe("KeyValueStore")
  expect(error.method).toBe(method)
  expect(error.message).toContain("StrictDistributed fails closed")
  const cause = KeyValueStore.backendUnavailable(error)
  expect(Option.map(cause, (c) => c.mode)).toEqual(Option.some("StrictDistributed"))
  return error
}

describe("KeyValueStore on StrictDistributed (real redis-server)", () => {
  it.scoped("reads back what it wrote; remove and clear delete what get sees", () =>
    Effect.gen(function* () {
      const redis = yield* redisServer()
      yield* roundTrip.pipe(Effect.provide(strictStore(redis)))
    })
  )

  it.scoped("counts its own entries in size and isEmpty, and fails size closed when Redis is killed", () =>
    Effect.gen(function* () {
      const redis = yield* redisServer()
      yield* Effect.gen(function* () {
        yield* sizeCounts
        const store = yield* Store
        yield* Effect.promise(() => redis.kill())
        expectUnavailable(yield* Effect.exit(store.size), "size")
        expectUnavailable(yield* Effect.exit(store.isEmpty), "size")
      }).pipe(Effect.provide(strictStore(redis)))
    })
  )

  it.scoped("keeps awkward keys apart and stores neither key material nor anything outside its partition", () =>
    Effect.gen(function* () {
      const redis = yield* redisServer()
      yield* Effect.promise(() => redis.command("SET", "kvtest:other", "x"))
      yield* awkwardKeysAreDistinct.pipe(Effect.provide(strictStore(redis)))
      const keys = (yield* Effect.promise(() => redis.command("KEYS", "*"))).split("\n").sort()
      expect(keys).toHaveLength(awkwardKeys.length + 1)
      for (const key of keys.filter((k) => k !== "kvtest:other")) {
        expect(key).toMatch(/^kvtest:v:sessions:-:[A-Za-z0-9_-]{24}$/)
      }
      yield* Effect.flatMap(Store, (store) => store.clear).pipe(Effect.provide(strictStore(redis)))
      expect(yield* Effect.promise(() => redis.command("KEYS", "*"))).toBe("kvtest:other")
    })
  )

  it.scoped("writes every entry with the store's timeToLive as a Redis expiry", () =>
    Effect.gen(function* () {
      const redis = yield* redisServer()
      yield* Effect.flatMap(Store, (store) => store.set("k", "v")).pipe(
        Effect.provide(strictStore(redis, { timeToLive: "90 seconds" }))
      )
      const key = yield* Effect.promise(() => redis.command("KEYS", "kvtest:v:*"))
      const pttl = Number(yield* Effect.promise(() => redis.command("PTTL", key)))
      expect(pttl).toBeGreaterThan(80_000)
      expect(pttl).toBeLessThanOrEqual(90_000)
    })
  )

  it.scoped("surfaces a killed redis as a SystemError failure on every method, never a defect or a miss", () =>
    Effect.gen(function* () {
      const redis = yield* redisServer()
      yield* Effect.gen(function* () {
        const store = yield* Store
        yield* store.set("k", "v")
        yield* Effect.promise(() => redis.kill())
        expectUnavailable(yield* Effect.exit(store.get("k")), "get")
        expectUnavailable(yield* Effect.exit(store.getUint8Array("k")), "getUint8Array")
        expectUnavailable(yield* Effect.exit(store.has("k")), "has")
        expectUnavailable(yield* Effect.exit(store.set("k", "w")), "set")
        expectUnavailable(yield* Effect.exit(store.remove("k")), "remove")
        expectUnavailable(yield* Effect.exit(store.clear), "clear")
        expectUnavailable(yield* Effect.exit(store.modify("k", (v) => v)), "get")
      }).pipe(Effect.provide(strictStore(redis)))
    })
  )

  it.scoped("reports a paused (black-holed) redis as TimedOut within the command timeout", () =>
    Effect.gen(function* () {
      const redis = yield* redisServer()
      yield* Effect.gen(function* () {
        const store = yield* Store
        yield* store.set("k", "v")
        redis.pause()
        const exit = yield* Effect.exit(store.get("k").pipe(Effect.timeout("5 seconds")))
        redis.resume()
        const error = expectUnavailable(exit as Exit.Exit<unknown, PlatformError>, "get")
        expect(error?.reason).toBe("TimedOut")
      }).pipe(Effect.provide(strictStore(redis)))
    })
  )

  const degradedOn = (redis: RedisServer) =>
    storeOn(explicitDegraded({ keyPrefix: "kvtest", cooldown: "200 millis" }).pipe(Layer.provide(clientFor(redis))))

  const expectDegradedFailure = (exit: Exit.Exit<unknown, PlatformError>, method: string) => {
    const error = failureOf(exit)
    expect(error._tag === "SystemError" && error.method).toBe(method)
    expect(Option.map(KeyValueStore.backendUnavailable(error), (c) => c.mode)).toEqual(Option.some("ExplicitDegraded"))
  }

  it.scoped("under ExplicitDegraded serves get/set node-locally while Redis is down, but remove and clear fail", () =>
    Effect.gen(function* () {
      const redis = yield* redisServer()
      yield* Effect.gen(function* () {
        const store = yield* Store
        yield* Effect.promise(() => redis.kill())
        yield* store.set("k", "local")
        expect(yield* store.get("k")).toEqual(Option.some("local"))
        const cache = yield* DistributedCache
        expect((yield* cache.stats).degraded).toBe(true)
        expectDegradedFailure(yield* Effect.exit(store.remove("k")), "remove")
        expectDegradedFailure(yield* Effect.exit(store.clear), "clear")
      }).pipe(Effect.provide(degradedOn(redis)))
    })
  )

  it.scoped("under ExplicitDegraded fails size while Redis is down instead of counting the fallback", () =>
    Effect.gen(function* () {
      const redis = yield* redisServer()
      yield* Effect.gen(function* () {
        const store = yield* Store
        yield* store.set("k", "v")
        expect(yield* store.size).toBe(1)
        yield* Effect.promise(() => redis.kill())
        yield* store.set("k2", "local")
        expectDegradedFailure(yield* Effect.exit(store.size), "size")
      }).pipe(Effect.provide(degradedOn(redis)))
    })
  )
})

describe("KeyValueStore types", () => {
  it("needs only a DistributedCache, and LocalOnly provides everything", () => {
    const layer = KeyValueStore.layer({ name: "s" })
    expect(Layer.isLayer(layer)).toBe(true)
    const complete: Layer.Layer<PlatformKeyValueStore.KeyValueStore> = layer.pipe(Layer.provide(localOnly()))
    expect(Layer.isLayer(complete)).toBe(true)
  })
})
