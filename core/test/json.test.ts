/**
 * Faithful and canonical JSON (pure): faithful JSON accepts exactly the values JSON gives back unchanged, canonical
 * JSON identifies exactly the structurally equal values, and a path in a reason is printable whatever the property
 * names hold.
 *
 * Seeded: FC_SEED reproduces a run (printed below), FC_RUNS raises the number of runs (never below 1,000).
 */
import * as fc from "fast-check"
import { describe, expect, it } from "vitest"
import { canonicalJson, describePath, faithfulJson, Invalid, unfaithfulReason } from "../src/index.js"
import { hostileText, seeded } from "./support/property.js"

const params = seeded("faithful-json")

/** printable ASCII only: nothing that breaks, reorders or hides part of a log line */
const PRINTABLE = /^[\x20-\x7e]*$/

const isPlain = (u: object) => {
  const proto = Object.getPrototypeOf(u)
  return proto === Object.prototype || proto === null
}

/**
 * The oracle: is `back` (what JSON.parse gave) the same value as `original`? Same types, same numbers (Object.is,
 * except that -0 and 0 are one number: JSON has no negative zero, a documented normalisation), same array lengths
 * and elements, plain objects with the same defined properties (an undefined property is an absent one in JSON).
 */
const sameValue = (original: unknown, back: unknown): boolean => {
  if (typeof original === "number") return typeof back === "number" && (original === back || Object.is(original, back))
  if (original === null || typeof original !== "object") return Object.is(original, back)
  if (back === null || typeof back !== "object") return false
  if (Array.isArray(original)) {
    if (!Array.isArray(back) || back.length !== original.length) return false
    for (let i = 0; i < original.length; i++) {
      if (!(i in original) || !sameValue(original[i], back[i])) return false
    }
    return true
  }
  if (!isPlain(original) || Array.isArray(back) || Object.getOwnPropertySymbols(original).length > 0) return false
  const o = original as Record<string, unknown>
  const b = back as Record<string, unknown>
  const defined = Object.keys(o).filter((k) => o[k] !== undefined)
  if (defined.length !== Object.keys(b).length) return false
  return defined.every((k) => Object.prototype.hasOwnProperty.call(b, k) && sameValue(o[k], b[k]))
}

const jsonGivesBack = (value: unknown): boolean => {
  try {
    const text = JSON.stringify(value)
    return typeof text === "string" && sameValue(value, JSON.parse(text))
  } catch {
    return false
  }
}

/** everything JavaScript has, JSON-safe or not */
const anyValue = fc.oneof(
  fc.anything({
    maxDepth: 4,
    withBigInt: true,
    withBoxedValues: true,
    withDate: true,
    withMap: true,
    withSet: true,
    withNullPrototype: true,
    withObjectString: true,
    withSparseArray: true,
    withTypedArray: true,
    withUnicodeString: true
  }),
  fc.jsonValue({ maxDepth: 4 }),
  fc.constantFrom<unknown>(
    NaN,
    Infinity,
    -Infinity,
    -0,
    undefined,
    () => 1,
    Symbol("s"),
    [undefined],
    { toJSON: () => "x" },
    new Date(0),
    new Date(NaN),
    { [Symbol("k")]: 1 }
  ),
  fc.double().map((n) => ({ n }))
)

describe("faithful JSON", () => {
  it("accepts a value exactly when JSON.parse(JSON.stringify(value)) gives the same value back", () => {
    fc.assert(
      fc.property(anyValue, (value) => {
        const result = faithfulJson(value, Infinity)
        const ok = typeof result === "string"
        expect(ok, `${ok ? "accepted" : "refused"}: ${fc.stringify(value)}`).toBe(jsonGivesBack(value))
        if (typeof result === "string") expect(result).toBe(JSON.stringify(value))
        else expect(result.reason).toMatch(PRINTABLE)
      }),
      params
    )
  })

  it("rejects cycles and nesting too deep to encode without a stack overflow, as reasons and never as throws", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          { weight: 50, arbitrary: fc.integer({ min: 1_001, max: 3_000 }) },
          { weight: 1, arbitrary: fc.constant(100_000) }
        ),
        fc.boolean(),
        (depth, arrays) => {
          let value: unknown = 1
          for (let i = 0; i < depth; i++) value = arrays ? [value] : { a: value }
          expect(unfaithfulReason(value)).toMatch(/^nesting deeper than 1000 levels/)
          const cyclic: Record<string, unknown> = { depth }
          cyclic["self"] = arrays ? [cyclic] : { back: cyclic }
          expect(unfaithfulReason(cyclic)).toMatch(/^a circular reference at/)
        }
      ),
      params
    )
  })

  it("rejects arrays that JSON.stringify would not write element by element (own toJSON, subclasses)", () => {
    class Tagged extends Array<number> {}
    const withToJson = Object.assign([1, 2], { toJSON: () => "x" })
    expect(faithfulJson(withToJson, Infinity)).toEqual(
      new Invalid("an array with its own toJSON or of a subclass at $ is not plain JSON")
    )
    expect(faithfulJson({ a: [Tagged.from([1])] }, Infinity)).toBeInstanceOf(Invalid)
    expect(faithfulJson({ a: [[1], []] }, Infinity)).toBe('{"a":[[1],[]]}')
  })
})

describe("canonical JSON", () => {
  const shuffled = (value: unknown, order: ReadonlyArray<number>): unknown => {
    if (value === null || typeof value !== "object") return value
    if (Array.isArray(value)) return value.map((v) => shuffled(v, order))
    const entries = Object.entries(value as Record<string, unknown>)
    const out: Record<string, unknown> = {}
    const picked = entries.map((e, i) => [order[i % Math.max(1, order.length)] ?? 0, i, e] as const)
    picked.sort((a, b) => a[0] - b[0] || a[1] - b[1])
    for (const [, , [k, v]] of picked) Object.defineProperty(out, k, { value: shuffled(v, order), enumerable: true })
    return out
  }

  it("gives the value back and ignores property order", () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4 }), fc.array(fc.nat(100)), (value, order) => {
        const text = canonicalJson(value)
        expect(sameValue(value, JSON.parse(text))).toBe(true)
        expect(canonicalJson(shuffled(value, order))).toBe(text)
      }),
      params
    )
  })

  it("two keys share a canonical text exactly when they are the same JSON value", () => {
    // a small domain, so that equal and almost-equal values are frequent
    const small = fc.letrec<{ value: unknown }>((tie) => ({
      value: fc.oneof(
        { depthSize: "small" },
        fc.constantFrom<unknown>(0, -0, 1, "1", "", "a", "\ud800", null, true, false),
        fc.array(tie("value"), { maxLength: 2 }),
        fc.dictionary(fc.constantFrom("a", "b", "__proto__", "a\u0000"), tie("value"), { maxKeys: 2 })
      )
    })).value
    fc.assert(
      fc.property(small, small, (a, b) => {
        expect(canonicalJson(a) === canonicalJson(b)).toBe(sameValue(a, b))
      }),
      params
    )
  })
})

describe("texts built from hostile input", () => {
  it("a path into a value is printable ASCII, whatever the property names hold", () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(hostileText, fc.nat())), (path) => {
        const text = describePath(path)
        expect(text).toMatch(PRINTABLE)
        expect(text.length).toBeLessThanOrEqual(120)
      }),
      params
    )
  })
})
