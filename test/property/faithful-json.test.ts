/**
 * Properties of the texts the library produces from hostile input (no Redis): no rejection reason or scrubbed driver
 * error can carry a secret or break a log line. Faithful and canonical JSON themselves: core/test/json.test.ts.
 *
 * Seeded: FC_SEED reproduces a run (printed below), FC_RUNS raises the number of runs (never below 1,000).
 */
import { Effect, Exit, Schema } from "effect"
import * as fc from "fast-check"
import { describe, expect, it } from "vitest"
import { CacheValueInvalid, Keyspace, LocalOnly } from "effect-failclosed"
import { makeSecretScrubber } from "@effect-failclosed/core"
import { hostileText } from "../../core/test/support/property.js"
import { seeded } from "../support/property.js"

const params = seeded("faithful-json")

/** printable ASCII only: nothing that breaks, reorders or hides part of a log line */
const PRINTABLE = /^[\x20-\x7e]*$/

describe("texts built from hostile input", () => {
  it("a rejected value's error names the problem in one printable line, whatever its property names", async () => {
    // unfaithful JSON (reason from the JSON check) and a Schema that refuses the value (reason from the Schema)
    const Loose = Keyspace.make({ name: "loose", key: Schema.String, value: Schema.Unknown, timeToLive: "1 minute" })
    const Typed = Keyspace.make({
      name: "typed",
      key: Schema.String,
      value: Schema.Record({ key: Schema.String, value: Schema.Record({ key: Schema.String, value: Schema.Number }) }),
      timeToLive: "1 minute"
    })
    const poison = fc.constantFrom<unknown>(NaN, Infinity, 1n, () => 1, Symbol("s"), new Date(0), new Map(), "x")
    await fc.assert(
      fc.asyncProperty(fc.array(hostileText, { minLength: 1, maxLength: 4 }), poison, async (names, bad) => {
        let value: unknown = bad
        for (const name of names.reverse()) value = { [name]: value }
        const keyspace = typeof bad === "string" || names.length === 2 ? Typed : Loose
        const exit = await Effect.runPromiseExit(keyspace.set("k", value as never).pipe(Effect.provide(LocalOnly)))
        expect(Exit.isFailure(exit)).toBe(true)
        const error = Exit.isFailure(exit) ? exit.cause : undefined
        const failure = error?._tag === "Fail" ? error.error : undefined
        expect(failure).toBeInstanceOf(CacheValueInvalid)
        expect((failure as CacheValueInvalid).message).toMatch(PRINTABLE)
      }),
      params
    )
  })

  it("a scrubbed driver error holds no secret and nothing that breaks a log line", () => {
    // secrets that the replacement text cannot itself spell
    const secret = fc.string({ unit: "binary", minLength: 8, maxLength: 40 }).filter((s) => !"<redacted>".includes(s))
    fc.assert(
      fc.property(secret, hostileText, hostileText, fc.boolean(), (password, before, after, inUrl) => {
        const scrub = makeSecretScrubber([password])
        const leaked = inUrl
          ? `${before} redis://user:${encodeURIComponent(password)}@host:6379 ${after}`
          : `${before}${password}${after}`
        const text = scrub(new Error(leaked))
        expect(text).not.toContain(password)
        expect(text).not.toContain(encodeURIComponent(password))
        expect(text).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/)
        expect(text.length).toBeLessThanOrEqual(200)
      }),
      params
    )
  })
})
