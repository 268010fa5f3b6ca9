/**
 * The entry envelope (pure): a sealed entry opens back into exactly what was sealed, no plain entry (JSON) is ever
 * taken for a sealed one, a corrupt envelope is no envelope, and the one size check counts UTF-8 bytes exactly.
 *
 * Seeded: FC_SEED reproduces a run (printed below), FC_RUNS raises the number of runs (never below 1,000).
 */
import * as fc from "fast-check"
import { describe, expect, it } from "vitest"
import { exceedsBytes, faithfulJson, isSealed, Invalid, seal, unseal } from "../src/index.js"
import { seeded } from "./support/property.js"

const params = seeded("envelope")

const millis = fc.integer({ min: 0, max: 2 ** 50 })

describe("sealed entries", () => {
  it("open back into the JSON, the time written and the end of the time to live", () => {
    fc.assert(
      fc.property(fc.jsonValue(), millis, fc.integer({ min: 1, max: 2 ** 40 }), (value, writtenAt, ttl) => {
        const json = JSON.stringify(value)
        const raw = seal(json, writtenAt, ttl)
        expect(isSealed(raw)).toBe(true)
        expect(unseal(raw)).toEqual({ writtenAt, freshUntil: writtenAt + ttl, json })
      }),
      params
    )
  })

  it("are never confused with a plain entry: no JSON text starts like an envelope", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const json = JSON.stringify(value)
        expect(isSealed(json)).toBe(false)
      }),
      params
    )
  })

  it("a corrupt envelope is none", () => {
    for (const raw of [
      "~",
      "~1:",
      "~1:5",
      "~1:5:6",
      "~1:x:6:1",
      "~1:5:y:1",
      "~2:5:6:1",
      "~1:1e400:6:1",
      "~1:0.5:6:1"
    ]) {
      expect(unseal(raw), raw).toBeUndefined()
    }
    expect(unseal("~1:5:6:")).toEqual({ writtenAt: 5, freshUntil: 6, json: "" })
  })
})

describe("the size check", () => {
  it("is true exactly when the UTF-8 of the text is larger than the limit", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 60 }), fc.integer({ min: 0, max: 200 }), (text, max) => {
        expect(exceedsBytes(text, max)).toBe(Buffer.byteLength(text, "utf8") > max)
      }),
      params
    )
  })

  it("refuses a value over the limit with a reason, and takes one at the limit", () => {
    expect(faithfulJson("ab", 4)).toBe('"ab"')
    expect(faithfulJson("abc", 4)).toEqual(new Invalid("encoded value is larger than 4 bytes"))
    expect(faithfulJson("é", 4)).toBe('"é"')
    expect(faithfulJson("éé", 4)).toBeInstanceOf(Invalid)
    expect(faithfulJson(undefined, 4)).toEqual(new Invalid("undefined is not representable in JSON"))
  })
})
