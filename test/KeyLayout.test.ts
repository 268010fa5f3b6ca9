/**
 * KeyLayout.pattern against the keys the features really write: every entry is written on a real
 * redis-server through the public API, the keys each write added are recorded, and `SCAN … MATCH`
 * with the pattern of a target must return exactly the keys written for that target, for tenant
 * ids full of glob characters and for ids whose encoding starts like another's; `entryKey` names the key a
 * keyspace wrote for one entry.
 */
import { KeyValueStore as PlatformKeyValueStore } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Schema } from "effect"
import { Redis } from "ioredis"
import { RedisClient, strictDistributed } from "effect-failclosed"
import * as KeyLayout from "effect-failclosed/KeyLayout"
import * as FailClosedKeyValueStore from "effect-failclosed/KeyValueStore"
import * as Keyspace from "effect-failclosed/Keyspace"
import * as RateLimiter from "effect-failclosed/RateLimiter"
import * as ReplayGuard from "effect-failclosed/ReplayGuard"
import { redisServer } from "./support/RedisServer.js"

/** `a` and `ab` (one encoding is a prefix of the other's), glob characters, a backslash, a colon, a lone surrogate */
const TENANTS = ["acme", "a", "ab", "a*", "*", "[ab]", "a?c", "^x", "\\", "x:y", "\ud800"] as const

const Profiles = Keyspace.make({ name: "profiles", key: Schema.String, value: Schema.Number, timeToLive: "1 minute" })
// a name whose encoding starts with the other's: its keys must not match "profiles"
const Profile = Keyspace.make({ name: "profile", key: Schema.String, value: Schema.Number, timeToLive: "1 minute" })
const Login = RateLimiter.make({ name: "login", limit: 5, window: "1 minute", algorithm: "sliding-window" })
// a token's refill time is window / limit: long enough that no bucket expires during the test
const LoginBucket = RateLimiter.make({ name: "login", limit: 5, window: "1 hour", algorithm: "token-bucket" })
const Webhooks = ReplayGuard.make({ name: "webhooks", window: "1 minute" })

const KEY_PREFIX = "app"

/** a connection of the test's own, closed with the scope */
const connect = (url: string) =>
  Effect.acquireRelease(
    Effect.sync(() => new Redis(url, { lazyConnect: false })),
    (client) => Effect.promise(() => client.quit())
  )

/** every key `SCAN … MATCH pattern` returns, sorted */
const scanMatch = (client: Redis, pattern: string) =>
  Effect.promise(async () => {
    const keys: Array<string> = []
    let cursor = "0"
    do {
      const [next, batch] = await client.scan(cursor, "MATCH", pattern, "COUNT", 1000)
      keys.push(...batch)
      cursor = next
    } while (cursor !== "0")
    return keys.sort()
  })

type Label = `${string}/${string}`

describe("KeyLayout.pattern and KeyLayout.entryKey", () => {
  it.scoped("matches exactly the keys each feature wrote for a target, and none of another tenant's", () =>
    Effect.gen(function* () {
      const redis = yield* redisServer()
      const client = yield* connect(redis.url)
      const allKeys = Effect.map(scanMatch(client, "*"), (keys) => new Set(keys))
      const written = new Map<Label, Array<string>>()
      /** runs `write` and records the keys it added under `label` */
      const record = <E, R>(label: Label, write: Effect.Effect<unknown, E, R>) =>
        Effect.gen(function* () {
          const before = yield* allKeys
          yield* write
          const added = [...(yield* allKeys)].filter((k) => !before.has(k))
          expect(added.length, label).toBeGreaterThan(0)
          written.set(label, [...(written.get(label) ?? []), ...added])
        })

      const program = Effect.gen(function* () {
        const kv = yield* PlatformKeyValueStore.KeyValueStore
        for (const tenant of [undefined, ...TENANTS]) {
          const t = tenant ?? "(none)"
          yield* record(`profiles/${t}`, Profiles.set("k1", 1, { tenant }))
          yield* record(`profiles/${t}`, Profiles.set("k2", 2, { tenant }))
          yield* record(`profile/${t}`, Profile.set("k1", 1, { tenant }))
          yield* record(`login-s/${t}`, Login.consume("user@example.com", { tenant }))
          yield* record(`login-t/${t}`, LoginBucket.consume("user@example.com", { tenant }))
          yield* record(`webhooks/${t}`, Webhooks.claim("delivery-1", { tenant }))
        }
        yield* record("sessions/(none)", kv.set("s1", "v"))
      })
      yield* program.pipe(
        Effect.provide(
          FailClosedKeyValueStore.layer({ name: "sessions" }).pipe(
            Layer.provideMerge(strictDistributed({ keyPrefix: KEY_PREFIX })),
            // nothing here measures time: generous bounds, so a loaded machine does not fail the startup
            Layer.provide(
              RedisClient.layer({ url: redis.url, startupTimeout: "10 seconds", commandTimeout: "5 seconds" })
            )
          )
        )
      )

      const keysOf = (feature: string, tenants?: ReadonlyArray<string | undefined>) =>
        [...written]
          .filter(([label]) => {
            const [f, t] = label.split(/\/(.*)/s) as [string, string]
            return f === feature && (tenants === undefined || tenants.some((x) => (x ?? "(none)") === t))
          })
          .flatMap(([, keys]) => keys)
          .sort()

      const cases: Array<[KeyLayout.Target, Array<string>]> = [
        [{ keyspace: "profiles", keyPrefix: KEY_PREFIX }, keysOf("profiles")],
        [{ keyspace: "profiles", tenant: null, keyPrefix: KEY_PREFIX }, keysOf("profiles", [undefined])],
        [{ keyspace: "profile", keyPrefix: KEY_PREFIX }, keysOf("profile")],
        [{ rateLimiter: "login", keyPrefix: KEY_PREFIX }, [...keysOf("login-s"), ...keysOf("login-t")].sort()],
        [{ rateLimiter: "login", algorithm: "token-bucket", keyPrefix: KEY_PREFIX }, keysOf("login-t")],
        [{ replayGuard: "webhooks", keyPrefix: KEY_PREFIX }, keysOf("webhooks")],
        [{ keyValueStore: "sessions", keyPrefix: KEY_PREFIX }, keysOf("sessions")]
      ]
      for (const tenant of TENANTS) {
        cases.push(
          [{ keyspace: "profiles", tenant, keyPrefix: KEY_PREFIX }, keysOf("profiles", [tenant])],
          [{ keyspace: "profile", tenant, keyPrefix: KEY_PREFIX }, keysOf("profile", [tenant])],
          [
            { rateLimiter: "login", tenant, keyPrefix: KEY_PREFIX },
            [...keysOf("login-s", [tenant]), ...keysOf("login-t", [tenant])].sort()
          ],
          [
            { rateLimiter: "login", algorithm: "sliding-window", tenant, keyPrefix: KEY_PREFIX },
            keysOf("login-s", [tenant])
          ],
          [{ replayGuard: "webhooks", tenant, keyPrefix: KEY_PREFIX }, keysOf("webhooks", [tenant])]
        )
      }
      for (const [target, expected] of cases) {
        expect(expected.length, JSON.stringify(target)).toBeGreaterThan(0)
        expect(yield* scanMatch(client, KeyLayout.pattern(target)), JSON.stringify(target)).toEqual(expected)
      }
      // entryKey names the key a keyspace wrote for one entry, for every tenant
      for (const tenant of [undefined, ...TENANTS]) {
        for (const key of ["k1", "k2"]) {
          const named = KeyLayout.entryKey({
            keyspace: "profiles",
            tenant,
            key: JSON.stringify(key),
            keyPrefix: KEY_PREFIX
          })
          expect(keysOf("profiles", [tenant]), `${tenant}/${key}`).toContain(named)
        }
      }
      // every key written is one of a feature's
      expect(keysOf("profiles").length + keysOf("profile").length).toBeGreaterThan(2 * TENANTS.length)
      expect((yield* allKeys).size).toBe([...written.values()].flat().length)
    })
  )

  it("uses the default key prefix of the modes", () => {
    expect(KeyLayout.pattern({ keyspace: "profiles" })).toBe("fc:k:profiles:*")
    expect(KeyLayout.pattern({ keyspace: "profiles", keyPrefix: "checkout" })).toMatch(/^checkout:/)
  })

  it("rejects an empty name or tenant and an invalid key prefix with a synchronous Error", () => {
    expect(() => KeyLayout.pattern({ keyspace: "" })).toThrow(/keyspace must be a non-empty string/)
    expect(() => KeyLayout.pattern({ replayGuard: "webhooks", tenant: "" })).toThrow(/tenant must be a non-empty/)
    expect(() => KeyLayout.pattern({ keyspace: "profiles", keyPrefix: "a*" })).toThrow(/keyPrefix must match/)
    expect(() => KeyLayout.pattern({ keyspace: "profiles", keyPrefix: "" })).toThrow(/keyPrefix must match/)
  })
})
