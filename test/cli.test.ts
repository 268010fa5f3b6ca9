/**
 * The `effect-failclosed` command (src/cli): `key` prints the key the library really writes, `pattern` the glob that
 * finds exactly a feature's (or a tenant's) keys, and `inspect` decodes every kind of value with read-only commands,
 * on a real password-protected redis-server, never printing the password. (test/package.test.ts runs the bin from
 * the packed package.)
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Schema } from "effect"
import { DistributedCache, Keyspace, RedisClient, strictDistributed } from "effect-failclosed"
import * as RateLimiter from "effect-failclosed/RateLimiter"
import * as ReplayGuard from "effect-failclosed/ReplayGuard"
import { Redis } from "ioredis"
import { run, Usage } from "../src/cli/run.js"
import { redisServer } from "./support/RedisServer.js"

const PASSWORD = "cli-pw-9Xq-secret"

const Profiles = Keyspace.make({
  name: "profiles",
  key: Schema.Struct({ userId: Schema.Number, region: Schema.String }),
  value: Schema.Struct({ name: Schema.String }),
  timeToLive: "10 minutes"
})

/** a password-protected redis-server, a cache on it with `keyPrefix`, and an admin connection for the test */
const setup = (keyPrefix = "fc") =>
  Effect.gen(function* () {
    const redis = yield* redisServer()
    yield* Effect.promise(() => redis.command("CONFIG", "SET", "requirepass", PASSWORD))
    const url = `redis://127.0.0.1:${redis.port}`
    const cache = yield* Layer.build(
      strictDistributed({ keyPrefix }).pipe(Layer.provide(RedisClient.layer({ url, password: PASSWORD })))
    )
    const admin = yield* Effect.acquireRelease(
      Effect.sync(() => new Redis(url, { password: PASSWORD, lazyConnect: true })),
      (client) => Effect.sync(() => client.disconnect())
    )
    const provide = <A, E>(self: Effect.Effect<A, E, DistributedCache>) => Effect.provide(self, cache)
    return { redis, url, admin, provide }
  })

const keysOf = (admin: Redis) => Effect.promise(() => admin.keys("*").then((keys) => keys.sort()))
const scan = (admin: Redis, match: string) =>
  Effect.promise(async () => {
    const found = new Set<string>()
    let cursor = "0"
    do {
      const [next, batch] = await admin.scan(cursor, "MATCH", match, "COUNT", 1000)
      for (const k of batch) found.add(k)
      cursor = next
    } while (cursor !== "0")
    return [...found].sort()
  })

const cli = (argv: ReadonlyArray<string>, env: Record<string, string | undefined> = {}) =>
  Effect.promise(() => run(argv, env))
const printed = (argv: ReadonlyArray<string>) => Effect.map(cli(argv), ({ out }) => out.trim())

/** the commands Redis ran, by name, from INFO commandstats */
const commandCounts = (admin: Redis) =>
  Effect.promise(async () => {
    const info = await admin.info("commandstats")
    const counts = new Map<string, number>()
    for (const [, name, calls] of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) counts.set(name!, Number(calls))
    return counts
  })

/** the read-only commands `inspect` may send (and ioredis' ready check, INFO) */
const READ_ONLY = new Set(["type", "pttl", "get", "hgetall", "zrange", "info", "auth", "client|setinfo", "command"])

describe("effect-failclosed key", () => {
  it.scoped("prints the key the library wrote, for any spacing and property order, tenant, prefix or none", () =>
    Effect.gen(function* () {
      const { admin, provide } = yield* setup("checkout")
      const tenant = "acme:eu*[x]"
      yield* provide(Profiles.set({ userId: 12345, region: "eu" }, { name: "Ada" }, { tenant }))
      const [written] = yield* keysOf(admin)
      // the JSON as an operator types it: other order, other spacing
      expect(
        yield* printed([
          "key",
          "--keyspace",
          "profiles",
          "--tenant",
          tenant,
          "--key",
          '{ "region": "eu", "userId": 12345 }',
          "--key-prefix",
          "checkout"
        ])
      ).toBe(written)

      yield* Effect.promise(() => admin.flushall())
      yield* provide(Profiles.set({ userId: 7, region: "us" }, { name: "Grace" }))
      const [untenanted] = yield* keysOf(admin)
      expect(
        yield* printed([
          "key",
          "--keyspace",
          "profiles",
          "--key",
          '{"userId":7,"region":"us"}',
          "--key-prefix",
          "checkout"
        ])
      ).toBe(untenanted)
      // the default prefix is fc: not this cache's key
      expect(yield* printed(["key", "--keyspace", "profiles", "--key", '{"userId":7,"region":"us"}'])).not.toBe(
        untenanted
      )
    })
  )

  it.effect("a usage error is exit code 2's error, naming what to fix", () =>
    Effect.gen(function* () {
      for (const [argv, message] of [
        [["key", "--keyspace", "profiles"], /--key is required/],
        [["key", "--keyspace", "profiles", "--key", "{not json"], /key is not JSON text/],
        [["key", "--keyspace", "profiles", "--key", "1", "--key-prefix", "a:b"], /keyPrefix must match/],
        [["pattern", "--tenant", "acme"], /exactly one of --keyspace/],
        [["pattern", "--rate-limiter", "l", "--algorithm", "leaky"], /--algorithm must be/],
        [["inspect", "k"], /give --url or set REDIS_URL/],
        [["frobnicate"], /unknown command/],
        // stray arguments are never repeated: a URL typed in the wrong place keeps its password
        [[`redis://:${PASSWORD}@127.0.0.1:6380`], /unknown command/],
        [["key", "--keyspace", "p", "--key", "1", `redis://:${PASSWORD}@127.0.0.1:6380`], /no positional argument/],
        [["pattern", "--keyspace", "p", `redis://:${PASSWORD}@127.0.0.1:6380`], /no positional argument/],
        // a URL that does not parse: a usage error that never echoes it (the password in it)
        [["inspect", "k", "--url", `redis://:${PASSWORD}@127.0.0.1:99999`], /the Redis URL does not parse/]
      ] as const) {
        const error = (yield* Effect.flip(Effect.tryPromise(() => run(argv, {})))).error
        expect(String(error)).toMatch(message)
        expect(error).toBeInstanceOf(Usage)
        expect(JSON.stringify(Object.entries(error as object)) + String(error)).not.toContain(PASSWORD)
      }
    })
  )
})

describe("effect-failclosed pattern", () => {
  it.scoped("prints the glob that finds exactly one feature's keys, or one tenant's", () =>
    Effect.gen(function* () {
      const { admin, provide } = yield* setup()
      const Login = RateLimiter.make({ name: "login", limit: 5, window: "1 minute", algorithm: "sliding-window" })
      const Hooks = ReplayGuard.make({ name: "webhooks", window: "1 minute" })
      for (const tenant of ["acme", "acme*", "globex"]) {
        yield* provide(Profiles.set({ userId: 1, region: "eu" }, { name: "Ada" }, { tenant }))
        yield* provide(Login.consume("ada@example.com", { tenant }))
        yield* provide(Hooks.claim("evt_1", { tenant }))
      }
      const all = yield* keysOf(admin)
      expect(all).toHaveLength(3 + 6 + 3)
      const cases = [
        [["--keyspace", "profiles", "--tenant", "acme"], 1],
        [["--keyspace", "profiles"], 3],
        [["--rate-limiter", "login", "--tenant", "acme*"], 2],
        [["--rate-limiter", "login", "--algorithm", "sliding-window"], 6],
        [["--rate-limiter", "login", "--algorithm", "fixed-window"], 0],
        [["--replay-guard", "webhooks", "--tenant", "globex"], 1],
        [["--replay-guard", "webhooks", "--no-tenant"], 0],
        [["--replay-guard", "webhooks"], 3]
      ] as const
      const matched = new Set<string>()
      for (const [args, count] of cases) {
        const glob = yield* printed(["pattern", ...args])
        const found = yield* scan(admin, glob)
        expect(found, `${args.join(" ")} -> ${glob}`).toHaveLength(count)
        for (const k of found) matched.add(k)
      }
      // every written key was matched by one of the patterns above
      expect([...matched].sort()).toEqual(all)
    })
  )
})

describe("effect-failclosed inspect", () => {
  it.scopedLive("decodes each kind of value with read-only commands, and never prints the password", () =>
    Effect.gen(function* () {
      const { admin, provide, url } = yield* setup()
      const env = { REDIS_URL: url, REDIS_PASSWORD: PASSWORD }
      const inspect = (key: string) =>
        Effect.map(cli(["inspect", key], env), ({ code, out }) => {
          expect(out).not.toContain(PASSWORD)
          return { code, ...(JSON.parse(out) as Record<string, unknown>) } as Record<string, unknown>
        })
      const keyOf = (args: ReadonlyArray<string>) => printed(["key", "--keyspace", "profiles", ...args])

      // a plain entry
      yield* provide(Profiles.set({ userId: 1, region: "eu" }, { name: "Ada" }, { tenant: "acme" }))
      const plainKey = yield* keyOf(["--tenant", "acme", "--key", '{"userId":1,"region":"eu"}'])
      // a sealed entry: written by getOrCompute with a stale window
      yield* provide(
        Profiles.getOrCompute({ userId: 2, region: "eu" }, Effect.succeed({ name: "Grace" }), {
          staleWhileRevalidate: "1 minute"
        })
      )
      const sealedKey = yield* keyOf(["--key", '{"userId":2,"region":"eu"}'])
      // a getOrCompute lock on an entry
      yield* provide(Effect.flatMap(DistributedCache, (c) => c.acquireLock(plainKey + "~lock", "owner-token", 30_000)))
      // rate-limit state of each algorithm, and a replay claim
      const before = new Set(yield* keysOf(admin))
      const newKeys = Effect.map(keysOf(admin), (keys) => keys.filter((k) => !before.has(k) && (before.add(k), true)))
      yield* provide(
        RateLimiter.make({ name: "fw", limit: 5, window: "1 minute", algorithm: "fixed-window" }).consume("s", {
          tenant: "acme",
          cost: 2
        })
      )
      const [fixedKey] = yield* newKeys
      yield* provide(
        RateLimiter.make({ name: "tb", limit: 5, window: "1 minute", algorithm: "token-bucket" }).consume("s")
      )
      const [bucketKey] = yield* newKeys
      yield* provide(
        RateLimiter.make({ name: "sw", limit: 5, window: "1 minute", algorithm: "sliding-window" }).consume("s", {
          cost: 3
        })
      )
      const slidingKeys = yield* newKeys
      yield* provide(ReplayGuard.make({ name: "webhooks", window: "1 minute" }).claim("evt_1", { tenant: "shop" }))
      const [claimKey] = yield* newKeys
      // a tagged entry, and the stamp of its tag
      yield* provide(Profiles.set({ userId: 4, region: "eu" }, { name: "Lin" }, { tenant: "acme", tags: ["org:7"] }))
      const taggedKey = yield* keyOf(["--tenant", "acme", "--key", '{"userId":4,"region":"eu"}'])
      const stampKey = (yield* newKeys).find((k) => k.startsWith("fc:t:"))
      // not JSON: a corrupt entry
      const corruptKey = yield* keyOf(["--key", '{"userId":3,"region":"eu"}'])
      yield* Effect.promise(() => admin.set(corruptKey, "{not json"))

      const digest = Effect.promise(() =>
        admin.keys("*").then((keys) => Promise.all(keys.sort().map((k) => admin.dump(k).then((d) => [k, d]))))
      )
      const stateBefore = yield* digest
      const commandsBefore = yield* commandCounts(admin)

      expect(yield* inspect(plainKey)).toMatchObject({
        code: 0,
        key: plainKey,
        kind: "plain entry",
        of: { feature: "keyspace", name: "profiles", tenant: "acme", lock: false },
        value: { name: "Ada" }
      })
      const sealed = yield* inspect(sealedKey)
      expect(sealed).toMatchObject({
        kind: "sealed entry",
        of: { feature: "keyspace", name: "profiles", tenant: null },
        fresh: true,
        value: { name: "Grace" }
      })
      expect(Date.parse(sealed["freshUntil"] as string) - Date.parse(sealed["writtenAt"] as string)).toBe(600_000)
      expect(yield* inspect(plainKey + "~lock")).toMatchObject({
        kind: "getOrCompute lock",
        of: { feature: "keyspace", lock: true },
        held: true
      })
      const fixed = yield* inspect(fixedKey!)
      expect(fixed).toMatchObject({
        kind: "rate-limit state",
        of: { feature: "rateLimiter", name: "fw", tenant: "acme", algorithm: "fixed-window" },
        state: { used: 2 }
      })
      expect(fixed["ttlMillis"]).toBeGreaterThan(0)
      expect(yield* inspect(bucketKey!)).toMatchObject({
        kind: "rate-limit state",
        of: { algorithm: "token-bucket", tenant: null },
        state: { debt: 60_000 }
      })
      // a sliding window: its decision key names both the log and the meta hash
      expect(slidingKeys.sort()).toEqual([expect.stringMatching(/\}:l$/), expect.stringMatching(/\}:m$/)])
      const sliding = yield* inspect(slidingKeys[0]!.slice(0, -2))
      expect(sliding).toMatchObject({
        kind: "rate-limit state",
        of: { algorithm: "sliding-window", name: "sw" },
        state: { costInWindow: 3, decisions: 1 },
        log: [{ cost: 3 }]
      })
      expect(yield* inspect(claimKey!)).toMatchObject({
        kind: "replay claim",
        of: { feature: "replayGuard", name: "webhooks", tenant: "shop" },
        claimed: true
      })
      const tagged = yield* inspect(taggedKey)
      expect(tagged).toMatchObject({
        kind: "plain entry",
        of: { feature: "keyspace", name: "profiles", tenant: "acme", lock: false },
        value: { name: "Lin" },
        tags: [{ tagHash: expect.any(String), token: expect.any(String) }]
      })
      expect(stampKey).toMatch(/^fc:t:profiles:acme:[A-Za-z0-9_-]{24}$/)
      expect(yield* inspect(stampKey!)).toMatchObject({
        kind: "tag stamp",
        of: { feature: "tagStamp", name: "profiles", tenant: "acme" },
        token: (tagged["tags"] as Array<{ token: string }>)[0]!.token
      })
      expect(yield* inspect(corruptKey)).toMatchObject({ kind: "corrupt entry", reason: "not JSON" })
      expect(yield* inspect("fc:nothing-here:-:x")).toMatchObject({ code: 1, kind: "missing" })

      // only read-only commands ran, and nothing changed
      const commandsAfter = yield* commandCounts(admin)
      expect(yield* digest).toEqual(stateBefore)
      const ran = [...commandsAfter].filter(([name, calls]) => calls !== (commandsBefore.get(name) ?? 0))
      expect(ran.length).toBeGreaterThan(0)
      for (const [name] of ran) expect(READ_ONLY, name).toContain(name)
    })
  )

  it.scoped("a killed or password-less connection is exit code 3's error, and never shows the password or URL", () =>
    Effect.gen(function* () {
      const { redis, url } = yield* setup()
      const failed = (env: Record<string, string>) =>
        Effect.map(Effect.flip(Effect.tryPromise(() => run(["inspect", "fc:k"], env))), (e) =>
          String((e as { error: unknown }).error)
        )
      // the password in the URL, wrong: the error names the refusal, never the password
      const wrong = yield* failed({ REDIS_URL: `redis://:${PASSWORD}-wrong@127.0.0.1:${redis.port}` })
      expect(wrong).toMatch(/Redis did not answer/)
      expect(wrong).not.toContain(PASSWORD)
      yield* Effect.promise(() => redis.kill())
      const down = yield* failed({ REDIS_URL: url, REDIS_PASSWORD: PASSWORD })
      expect(down).toMatch(/Redis did not answer/)
      expect(down).not.toContain(PASSWORD)
    })
  )
})
