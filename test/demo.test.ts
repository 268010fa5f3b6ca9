import { execFile } from "node:child_process"
import { promisify } from "node:util"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { redisServer } from "./support/RedisServer.js"

const run = promisify(execFile)

const demo = (env: Record<string, string>) =>
  Effect.promise(() =>
    run("npx", ["tsx", "--conditions=source", "examples/demo.ts"], {
      env: { ...process.env, ...env },
      timeout: 60_000
    })
  )

describe("npm run demo", () => {
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
