/**
 * Input errors say which input they are about (`field`), so that a caller (the HTTP middleware's 400) picks its answer
 * from data, never from the wording of a message.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { Keyspace, LocalOnly, RateLimiter, ReplayGuard } from "effect-failclosed"

const Items = Keyspace.make({
  name: "fields",
  key: Schema.String,
  value: Schema.Number,
  timeToLive: "1 minute",
  maxKeyBytes: 16,
  maxTenantLength: 8
})
const Limiter = RateLimiter.make({ name: "fields", algorithm: "fixed-window", limit: 5, window: "1 second" })
const Guard = ReplayGuard.make({ name: "fields", window: "1 second", maxNonceLength: 8 })

/** the field of the error `self` fails with (undefined for an error without one) */
const fieldOf = <A, E, R>(self: Effect.Effect<A, E, R>) =>
  Effect.map(Effect.flip(self), (error) => (error as { readonly field?: string }).field)

describe("input errors carry the field they are about", () => {
  it.effect("keyspace: tenant, key, value, timeToLive and options", () =>
    Effect.gen(function* () {
      expect(yield* fieldOf(Items.set("k", 1, { tenant: "" }))).toBe("tenant")
      expect(yield* fieldOf(Items.set("k", 1, { tenant: "a tenant id too long" }))).toBe("tenant")
      expect(yield* fieldOf(Items.set("a key longer than sixteen bytes", 1))).toBe("key")
      expect(yield* fieldOf(Items.set("k", NaN))).toBe("value")
      expect(yield* fieldOf(Items.set("k", 1, { timeToLive: "-1 seconds" }))).toBe("timeToLive")
      expect(yield* fieldOf(Items.getOrCompute("k", Effect.succeed(1), { tenant: "" }))).toBe("tenant")
      expect(yield* fieldOf(Items.getOrCompute("k", Effect.succeed(1), { lock: true, lockTimeout: "0 millis" }))).toBe(
        "options"
      )
    }).pipe(Effect.provide(LocalOnly))
  )

  it.effect("rate limiter: subject, tenant and cost; replay guard: nonce and tenant", () =>
    Effect.gen(function* () {
      expect(yield* fieldOf(Limiter.consume(""))).toBe("subject")
      expect(yield* fieldOf(Limiter.consume("s", { tenant: "" }))).toBe("tenant")
      expect(yield* fieldOf(Limiter.consume("s", { cost: 6 }))).toBe("cost")
      expect(yield* fieldOf(Guard.claim(""))).toBe("nonce")
      expect(yield* fieldOf(Guard.claim("too long a nonce"))).toBe("nonce")
      expect(yield* fieldOf(Guard.claim("n", { tenant: "" }))).toBe("tenant")
    }).pipe(Effect.provide(LocalOnly))
  )
})
