/**
 * The Effect 4 line runs where it must: on Node ≥ 22.12 (vitest 5 needs it; the registry's `node` package of this
 * workspace member provides Node 24 while the Effect 3 package stays on the machine's Node 20), against effect 4.
 * Its errors and security events keep the Effect 3 line's tags and shapes.
 */
import { createRequire } from "node:module"
import { assert, describe, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as Schema from "effect/Schema"
import { TestClock } from "effect/testing"
import {
  CacheBackendUnavailable,
  RateLimitExceeded,
  ReplayDetected,
  SecurityEvent as SecurityEventSchema
} from "effect-failclosed-effect4"
import * as SecurityEvent from "effect-failclosed-effect4/SecurityEvent"

describe("the Effect 4 line's runtime", () => {
  it("runs on Node 22.12 or later (the workspace's node@24), not the machine's Node 20", () => {
    const [major = 0, minor = 0] = process.versions.node.split(".").map(Number)
    assert.isTrue(major > 22 || (major === 22 && minor >= 12), `Node ${process.version}`)
  })

  it("resolves effect 4, not the Effect 3 package's effect 3", () => {
    const require = createRequire(import.meta.url)
    const version = (require("effect/package.json") as { version: string }).version
    assert.match(version, /^4\./)
  })
})

describe("errors and security events of the Effect 4 line", () => {
  it.effect("a startup failure names the alternatives, and catchTag removes it from the channel", () =>
    Effect.gen(function* () {
      const error = new CacheBackendUnavailable({ mode: "StrictDistributed", operation: "startup", reason: "timeout" })
      assert.include(error.message, "ExplicitDegraded")
      assert.include(error.message, "LocalOnly")
      const handled = yield* Effect.fail(error).pipe(
        Effect.catchTag("CacheBackendUnavailable", (e) => Effect.succeed(e._tag))
      )
      assert.strictEqual(handled, "CacheBackendUnavailable")
    })
  )

  it("errors carry the Effect 3 line's tags and messages", () => {
    assert.strictEqual(new ReplayDetected({ guard: "webhooks" })._tag, "ReplayDetected")
    const denied = new RateLimitExceeded({ limiter: "login", retryAfter: Duration.seconds(3) })
    assert.strictEqual(denied.message, `Rate limit "login" exceeded; retry after 3s`)
  })

  it.effect("a security event is logged once, as the event object itself, stamped with the Clock's time", () =>
    Effect.gen(function* () {
      const messages: Array<unknown> = []
      const collector = Logger.make((options) => {
        messages.push(options.message)
      })
      yield* TestClock.setTime(Date.parse("2026-01-02T03:04:05.000Z"))
      yield* SecurityEvent.emit({ event: "BACKEND_RECOVERED", mode: "ExplicitDegraded", detail: "PING answered" }).pipe(
        Effect.provide(Logger.layer([collector]))
      )
      assert.strictEqual(messages.length, 1)
      const [event] = messages[0] as ReadonlyArray<unknown>
      assert.deepStrictEqual(event, {
        event: "BACKEND_RECOVERED",
        backend: "redis",
        mode: "ExplicitDegraded",
        tenant: null,
        detail: "PING answered",
        timestamp: "2026-01-02T03:04:05.000Z"
      })
      assert.isTrue(Schema.is(SecurityEventSchema)(event))
      assert.isFalse(Schema.is(SecurityEventSchema)({ ...(event as object), timestamp: "yesterday" }))
    })
  )
})
