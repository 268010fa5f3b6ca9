import { execFile } from "node:child_process"
import { promisify } from "node:util"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Option, Schema } from "effect"
import { Keyspace, RedisClient, StrictDistributed } from "effect-failclosed"
import { redisServer } from "./support/RedisServer.js"

const run = promisify(execFile)

const demo = (env: Record<string, string>) =>
  Effect.promise(() =>
    run("npx", ["tsx", "--conditions=source", "examples/demo.ts"], {
      env: { ...process.env, ...env },
      timeout: 60_000
    })
  )

/** an application's keyspace of the same name, key and tenant as the demo's, on the default prefix */
const AppSessions = Keyspace.make({
  name: "demo-sessions",
  key: Schema.Struct({ id: Schema.String }),
  value: Schema.Struct({ user: Schema.String, roles: Schema.Array(Schema.String) }),
  timeToLive: "10 minutes"
})

describe("npm run demo", () => {
  it.scoped(
    "writes under a prefix of its own: an application's entry of the same keyspace, key and tenant survives",
    () =>
      Effect.gen(function* () {
        const redis = yield* redisServer()
        const app = StrictDistributed.pipe(Layer.provide(RedisClient.layer({ url: redis.url })))
        const entry = { user: "grace", roles: ["owner"] }
        yield* AppSessions.set({ id: "s-1" }, entry, { tenant: "acme" }).pipe(Effect.provide(app))
        const before = yield* Effect.promise(() => redis.command("KEYS", "*"))
        expect(before).toMatch(/^fc:/)
        const { stdout } = yield* demo({ REDIS_URL: redis.url })
        expect(stdout).toContain('every key it writes starts with "effect-failclosed-demo:"')
        // the demo's own entry was read back from Redis, then invalidated (its own, not the application's)
        expect(stdout).toContain('{"user":"ada","roles":["admin"]} from redis')
        expect(stdout).toContain("invalidate          -> deleted")
        const cached = yield* AppSessions.get({ id: "s-1" }, { tenant: "acme" }).pipe(Effect.provide(app))
        expect(Option.map(cached, (c) => c.value)).toEqual(Option.some(entry))
        expect(yield* Effect.promise(() => redis.command("KEYS", "*"))).toBe(before)
      }),
    // the demo is a child process (tsx): a loaded machine takes tens of seconds to start it
    90_000
  )

  it.scoped("shows every mode serving from its backend when Redis is up", () =>
    Effect.gen(function* () {
      const redis = yield* redisServer()
      const { stdout } = yield* demo({ REDIS_URL: redis.url })
      expect(stdout).toContain("from redis")
      expect(stdout).toContain("mode=StrictDistributed backend=redis")
      expect(stdout).toContain("from local\n")
      expect(stdout).not.toContain("caught CacheBackendUnavailable")
      expect(stdout).not.toContain("DEGRADED")
      expect(yield* Effect.promise(() => redis.command("DBSIZE"))).toBe("0")
    })
  )

  it.scoped("explains strict failure and marked degradation when Redis is down, without leaking the password", () =>
    Effect.gen(function* () {
      const redis = yield* redisServer()
      yield* Effect.promise(() => redis.kill())
      const { stdout, stderr } = yield* demo({ REDIS_URL: `redis://:hunter2-secret@127.0.0.1:${redis.port}` })
      expect(stdout).toContain("caught CacheBackendUnavailable (operation startup)")
      expect(stdout).toContain("ExplicitDegraded")
      expect(stdout).toContain("[security event] BACKEND_UNAVAILABLE_AT_STARTUP")
      expect(stdout).toContain("from local_degraded (DEGRADED: node-local)")
      expect(stdout + stderr).not.toContain("hunter2-secret")
    })
  )
})
