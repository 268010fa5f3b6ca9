/**
 * Properties of the flat-key fast path (pure, no Redis): whenever the one-pass writer answers, its answer is exactly
 * the canonical JSON the general path (plain check or Schema encoding, faithfulness check, canonical writer) gives;
 * it answers for every conforming key in any property order (the fast path is taken); and Schemas that are not flat
 * get no writer.
 *
 * Seeded: FC_SEED reproduces a run (printed below), FC_RUNS raises the number of runs (never below 1,000).
 */
import { Either, Schema } from "effect"
import * as fc from "fast-check"
import { describe, expect, it } from "vitest"
import { flatKeyWriter } from "../../src/internal/flatKey.js"
import { canonicalJson, unfaithfulReason } from "@effect-failclosed/core"
import { plainCheck } from "../../src/internal/plainSchema.js"
import { seeded } from "../support/property.js"

const params = seeded("flat-key")

/** what Keyspace does without the flat writer: the canonical JSON, or undefined for a rejected key */
const generalPath = (schema: Schema.Schema<any, any, never>) => {
  const isPlain = plainCheck(schema)
  const encode = Schema.encodeUnknownEither(schema)
  return (key: unknown): string | undefined => {
    let encoded: unknown = key
    if (isPlain === undefined || !isPlain(key)) {
      const e = encode(key)
      if (Either.isLeft(e)) return undefined
      encoded = e.right
    }
    return unfaithfulReason(encoded) === undefined ? canonicalJson(encoded) : undefined
  }
}

const fieldName = fc.oneof(
  fc.constantFrom("id", "a", "b", "Z", "10", "2", "é", "a b", '"'),
  fc.string({ maxLength: 4 })
)
const fieldType = fc.constantFrom(
  ["string", Schema.String] as const,
  ["number", Schema.Number] as const,
  ["boolean", Schema.Boolean] as const
)
const valueOf = (type: string): fc.Arbitrary<unknown> =>
  type === "string" ? fc.string() : type === "number" ? fc.double() : fc.boolean()
/** anything a caller might pass where a key is expected */
const stray = fc.oneof(
  fc.anything({ maxDepth: 2 }),
  fc.constantFrom<unknown>(NaN, Infinity, -0, null, undefined, new Date(0), [], Object.create(null))
)

const flatSchema = fc
  .uniqueArray(fc.tuple(fieldName, fieldType), { minLength: 1, maxLength: 4, selector: ([name]) => name })
  .map((fields) => ({
    fields,
    schema: Schema.Struct(Object.fromEntries(fields.map(([name, [, s]]) => [name, s]))) as Schema.Schema<
      any,
      any,
      never
    >
  }))

/** a conforming key, its properties in a random order, sometimes with one field replaced by a stray value */
const keyFor = (fields: ReadonlyArray<readonly [string, readonly [string, unknown]]>) =>
  fc
    .tuple(
      fc.tuple(...fields.map(([, [type]]) => valueOf(type))),
      fc.shuffledSubarray(
        fields.map((_, i) => i),
        { minLength: fields.length }
      ),
      fc.option(fc.tuple(fc.nat(fields.length - 1), stray), { freq: 3 }),
      fc.option(fc.tuple(fieldName, stray), { freq: 5 })
    )
    .map(([values, order, replaced, extra]) => {
      const key: Record<string, unknown> = {}
      for (const i of order) key[fields[i]![0]] = values[i]
      if (replaced !== null) key[fields[replaced[0]]![0]] = replaced[1]
      if (extra !== null) key[extra[0]] = extra[1]
      return key
    })

describe("flat keys", () => {
  it("the writer's answer is the general path's canonical JSON, and it answers for every conforming key", () => {
    fc.assert(
      fc.property(
        flatSchema.chain(({ fields, schema }) =>
          fc.tuple(fc.constant(fields), fc.constant(schema), fc.oneof(keyFor(fields), stray))
        ),
        ([fields, schema, key]) => {
          const write = flatKeyWriter(schema)
          expect(write).toBeDefined()
          const fast = write!(key)
          const general = generalPath(schema)(key)
          if (fast !== undefined) expect(fast).toBe(general)
          // a key with exactly the fields, each of its type and finite: the fast path is taken
          const conforming =
            typeof key === "object" &&
            key !== null &&
            Object.getPrototypeOf(key) === Object.prototype &&
            fields.every(([name, [type]]) => {
              const v = (key as Record<string, unknown>)[name]
              return Object.hasOwn(key, name) && typeof v === type && (type !== "number" || Number.isFinite(v))
            })
          if (conforming) expect(fast).toBeDefined()
        }
      ),
      params
    )
  })

  it("answers as the general path for symbol keys and hidden fields, and leaves it class instances and throwing getters", () => {
    const schema = Schema.Struct({ id: Schema.Number })
    const write = flatKeyWriter(schema)!
    const general = generalPath(schema)
    expect(write({ id: 1 })).toBe('{"id":1}')
    expect(write({ id: -0 })).toBe('{"id":0}')
    for (const key of [
      { id: 1, [Symbol("s")]: 1 },
      Object.defineProperty({}, "id", { value: 7, enumerable: false }),
      Object.defineProperty({ id: 8 }, "other", { value: 1, enumerable: false }),
      Object.assign(Object.create({ polluted: 1 }) as object, { id: 9 })
    ]) {
      const fast = write(key)
      if (fast !== undefined) expect(fast).toBe(general(key))
    }
    expect(write({ id: 1, [Symbol("s")]: 1 })).toBe('{"id":1}')
    class Id {
      constructor(readonly id: number) {}
    }
    expect(write(new Id(1))).toBeUndefined()
    expect(write({ id: NaN })).toBeUndefined()
    expect(
      write(
        Object.defineProperty({}, "id", {
          enumerable: true,
          get: () => {
            throw new Error("no")
          }
        })
      )
    ).toBeUndefined()
    expect(flatKeyWriter(Schema.Struct({ a: Schema.String, b: Schema.Boolean }))!({ b: true, a: "x" })).toBe(
      '{"a":"x","b":true}'
    )
  })

  it("gives no writer to Schemas that are not flat", () => {
    for (const schema of [
      Schema.String,
      Schema.Struct({}),
      Schema.Struct({ id: Schema.optional(Schema.Number) }),
      Schema.Struct({ id: Schema.Int }),
      Schema.Struct({ id: Schema.NumberFromString }),
      Schema.Struct({ id: Schema.Literal("a") }),
      Schema.Struct({ at: Schema.Date }),
      Schema.Struct({ nested: Schema.Struct({ id: Schema.Number }) }),
      Schema.Record({ key: Schema.String, value: Schema.Number }),
      Schema.Struct({ id: Schema.Number }).annotations({ parseOptions: { onExcessProperty: "error" } })
    ] as ReadonlyArray<Schema.Schema<any, any, never>>) {
      expect(flatKeyWriter(schema)).toBeUndefined()
    }
  })
})
