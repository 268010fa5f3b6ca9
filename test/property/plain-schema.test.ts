/**
 * Properties of the plain-Schema fast path (pure, no Redis): whenever the compiled check accepts a value, Schema's
 * own parser, decoding and encoding, succeeds and returns a value equal to it, property order included (so the
 * caller may use the value itself); the check accepts the values of the exact shape (the fast path is taken); and
 * a Schema with any part the check does not understand gets no check at all.
 *
 * Seeded: FC_SEED reproduces a run (printed below), FC_RUNS raises the number of runs (never below 1,000).
 */
import { Either, Option, Schema, SchemaAST as AST } from "effect"
import * as fc from "fast-check"
import { describe, expect, it } from "vitest"
import { plainCheck } from "../../src/internal/plainSchema.js"
import { seeded } from "../support/property.js"

const params = seeded("plain-schema")
const RUNS = params.numRuns

type AnySchema = Schema.Schema<any, any, never>

/** a Schema, a generator of the values of its exact shape, and whether the check must accept all of them */
interface Shape {
  readonly schema: AnySchema
  readonly conforming: fc.Arbitrary<unknown>
  /** false when a union in it has members the check cannot tell apart (it may then refuse conforming values) */
  readonly unambiguous: boolean
  /** false when plainCheck has no check for it */
  readonly plain: boolean
  /** a top-level literal field name → true when the field's type is a literal (for union discriminants) */
  readonly fields?: ReadonlyMap<string, boolean>
  readonly composite: boolean
}

enum Enum {
  A = "a",
  B = 1
}

/** what fast-check prints for a shape in a counterexample */
const printed = (schema: AnySchema) => ({ [fc.toStringMethod]: () => `Schema ${String(schema.ast)}` })

const leaf = (schema: AnySchema, conforming: fc.Arbitrary<unknown>): Shape => ({
  schema,
  conforming,
  unambiguous: true,
  plain: true,
  composite: false,
  ...printed(schema)
})

const leaves: ReadonlyArray<Shape> = [
  leaf(Schema.String, fc.string()),
  leaf(Schema.Number, fc.double()),
  leaf(Schema.Boolean, fc.boolean()),
  leaf(Schema.Null, fc.constant(null)),
  leaf(Schema.Literal("a"), fc.constant("a")),
  leaf(Schema.Literal(1), fc.constant(1)),
  leaf(Schema.Literal("a", "b", 0), fc.constantFrom("a", "b", 0)),
  leaf(Schema.Unknown, fc.jsonValue({ maxDepth: 2 })),
  leaf(Schema.Int, fc.integer()),
  leaf(Schema.NonEmptyString, fc.string({ minLength: 1 })),
  leaf(Schema.String.pipe(Schema.brand("Id")), fc.string()),
  leaf(Schema.Enums(Enum), fc.constantFrom(Enum.A, Enum.B)),
  leaf(Schema.NullOr(Schema.Number), fc.oneof(fc.constant(null), fc.double()))
]
const leafShape = fc.constantFrom(...leaves)

const FIELD_NAMES = ["a", "b", "c", "0", "10", "kind", "toString", "x y", "constructor"]

/** builds an object by assigning in schema order: the order the parser's output has */
const objectInOrder = (entries: ReadonlyArray<readonly [string, unknown] | undefined>): Record<string, unknown> => {
  const out: Record<string, unknown> = {}
  for (const e of entries) if (e !== undefined) out[e[0]] = e[1]
  return out
}

type Modifier = "required" | "optional" | "exact"

const struct = (fields: ReadonlyArray<readonly [string, Shape, Modifier]>): Shape => {
  const schemaFields: Record<string, Schema.Struct.Field> = {}
  for (const [name, shape, modifier] of fields) {
    schemaFields[name] =
      modifier === "required"
        ? shape.schema
        : modifier === "optional"
          ? Schema.optional(shape.schema)
          : Schema.optionalWith(shape.schema, { exact: true })
  }
  const entryOf = ([name, shape, modifier]: readonly [string, Shape, Modifier]) =>
    modifier === "required"
      ? shape.conforming.map((v) => [name, v] as const)
      : fc.option(
          shape.conforming.map((v) => [name, v] as const),
          { nil: undefined }
        )
  const schema = Schema.Struct(schemaFields) as unknown as AnySchema
  return {
    ...printed(schema),
    schema,
    conforming: fc.tuple(...fields.map(entryOf)).map(objectInOrder),
    unambiguous: fields.every(([, shape]) => shape.unambiguous),
    // Schema.optional(S) is a union of S and undefined: one the parser picks from by S's literal fields
    plain: fields.every(([, shape, modifier]) => shape.plain && (modifier !== "optional" || pickablePlain([shape]))),
    fields: new Map(fields.map(([name, shape, modifier]) => [name, modifier === "required" && isLiteral(shape)])),
    composite: true
  }
}

const isLiteral = (shape: Shape): boolean => shape.schema.ast._tag === "Literal"

/** the parser cannot be built when it picks members by a field named like a property of Object.prototype */
const pickablePlain = (members: ReadonlyArray<Shape>): boolean =>
  !members.some((m) => [...(m.fields ?? [])].some(([name, literal]) => literal && name in Object.prototype))

const union = (members: ReadonlyArray<Shape>, unambiguous: boolean): Shape => {
  // the parser reads literal fields of member structs to pick candidates; the check refuses an object there
  const literalNames = new Set<string>()
  for (const m of members) for (const [name, literal] of m.fields ?? []) if (literal) literalNames.add(name)
  const clash = members.some((m) => [...(m.fields ?? [])].some(([name, lit]) => literalNames.has(name) && !lit))
  const schema = Schema.Union(...members.map((m) => m.schema)) as AnySchema
  return {
    ...printed(schema),
    schema,
    conforming: fc.oneof(...members.map((m) => m.conforming)),
    unambiguous: unambiguous && !clash && members.every((m) => m.unambiguous),
    plain: members.every((m) => m.plain) && pickablePlain(members),
    composite: members.some((m) => m.composite)
  }
}

const shapeOf = (depth: number): fc.Arbitrary<Shape> => {
  if (depth === 0) return leafShape
  const child = shapeOf(depth - 1)
  const fieldsOf = (names: ReadonlyArray<string>) =>
    fc
      .uniqueArray(fc.constantFrom(...names), { maxLength: 4 })
      .chain((ns) =>
        fc.tuple(
          ...ns.map((n) => fc.tuple(fc.constant(n), child, fc.constantFrom<Modifier>("required", "optional", "exact")))
        )
      )
  const structShape = fieldsOf(FIELD_NAMES).map(struct)
  const arrayShape = fc.tuple(child, fc.boolean()).map(([c, nonEmpty]): Shape => {
    const schema = (nonEmpty ? Schema.NonEmptyArray(c.schema) : Schema.Array(c.schema)) as AnySchema
    return {
      ...printed(schema),
      schema,
      conforming: fc.array(c.conforming, { minLength: nonEmpty ? 1 : 0, maxLength: 3 }),
      unambiguous: c.unambiguous,
      plain: c.plain,
      composite: true
    }
  })
  const tupleShape = fc
    .tuple(fc.array(child, { maxLength: 2 }), fc.array(child, { maxLength: 2 }), fc.option(child, { nil: undefined }))
    .map(([required, optional, rest]): Shape => {
      const elements = [...required.map((s) => s.schema), ...optional.map((s) => Schema.optionalElement(s.schema))]
      const schema = (rest === undefined ? Schema.Tuple(...elements) : Schema.Tuple(elements, rest.schema)) as AnySchema
      const conforming = fc
        .tuple(
          fc.tuple(...required.map((s) => s.conforming)),
          fc.nat(optional.length).chain((present) => fc.tuple(...optional.slice(0, present).map((s) => s.conforming))),
          rest === undefined ? fc.constant([]) : fc.array(rest.conforming, { maxLength: 2 })
        )
        // rest elements follow only when every optional element is present
        .map(([r, o, tail]) => [...r, ...o, ...(o.length === optional.length ? tail : [])])
      return {
        ...printed(schema),
        schema,
        conforming,
        unambiguous: [...required, ...optional, ...(rest === undefined ? [] : [rest])].every((s) => s.unambiguous),
        plain: [...required, ...optional, ...(rest === undefined ? [] : [rest])].every((s) => s.plain),
        composite: true
      }
    })
  const composite = fc.oneof(structShape, arrayShape, tupleShape)
  const unionShape = fc.oneof(
    // identities only: whichever member the parser picks returns the input itself
    fc.array(leafShape, { minLength: 2, maxLength: 3 }).map((ms) => union(ms, true)),
    // discriminated structs: a distinct literal "kind" in each
    fc.array(fieldsOf(FIELD_NAMES.filter((n) => n !== "kind")), { minLength: 2, maxLength: 3 }).map((fieldLists) =>
      union(
        fieldLists.map((fs, i) =>
          struct([["kind", leaf(Schema.Literal(`k${i}`), fc.constant(`k${i}`)), "required"], ...fs])
        ),
        true
      )
    ),
    // one composite among identities: the kinds tell them apart
    // (but for Unknown: its objects may be the composite's too, and which member the parser tries first is not
    // looked at, so the check may refuse them)
    fc
      .tuple(composite, fc.array(leafShape, { minLength: 1, maxLength: 2 }))
      .map(([c, ls]) => union([...ls, c], !ls.some((l) => l.schema.ast._tag === "UnknownKeyword"))),
    // two composites: the check may refuse conforming values, never accept a value the parser changes
    fc.tuple(composite, composite).map(([a, b]) => union([a, b], false))
  )
  return fc.oneof({ depthSize: "small", withCrossShrink: true }, leafShape, composite, unionShape)
}

const shape = shapeOf(3)

// ---------------------------------------------------------------------------------------------------------------
// near misses: a value of the shape, then a few edits anywhere in it
// ---------------------------------------------------------------------------------------------------------------

/** a copy that keeps property order (the original may be shared by fast-check) */
const clone = (u: unknown): unknown => {
  if (Array.isArray(u)) return u.map(clone)
  if (u !== null && typeof u === "object") {
    const out: Record<string, unknown> = {}
    for (const k of Object.keys(u)) out[k] = clone((u as Record<string, unknown>)[k])
    return out
  }
  return u
}

class NotPlain {
  constructor(readonly a: unknown) {}
}

const odd = fc.constantFrom<unknown>(
  undefined,
  NaN,
  -0,
  null,
  "",
  "a",
  0,
  1,
  true,
  [],
  {},
  new Date(0),
  1n,
  Symbol("s"),
  () => 1,
  { kind: "k0" },
  { kind: "k1", a: "a" },
  [null],
  ["a", 1]
)
const extra = fc.oneof(odd, fc.jsonValue({ maxDepth: 2 }))

interface Edit {
  readonly kind: number
  readonly at: number
  readonly key: string
  readonly value: unknown
}
const edit: fc.Arbitrary<Edit> = fc.record({
  kind: fc.nat(19),
  at: fc.nat(),
  key: fc.constantFrom(...FIELD_NAMES),
  value: extra
})

const containers = (u: unknown, out: Array<object>): Array<object> => {
  if (u !== null && typeof u === "object") {
    out.push(u)
    for (const k of Object.keys(u)) containers((u as Record<string, unknown>)[k], out)
  }
  return out
}

/** applies one edit in place (or replaces the root, returned) */
const applyEdit = (root: unknown, e: Edit): unknown => {
  const all = containers(root, [])
  if (all.length === 0 || e.kind === 0) return e.value
  const target = all[e.at % all.length]! as Record<PropertyKey, unknown>
  const keys = Object.keys(target)
  const someKey = keys.length > 0 ? keys[e.at % keys.length]! : e.key
  switch (e.kind) {
    case 1:
      target[e.key] = e.value
      break
    case 2:
      delete target[someKey]
      break
    case 3: {
      // same properties, reversed order
      const entries = Object.entries(target).reverse()
      for (const [k] of entries) delete target[k]
      for (const [k, v] of entries) target[k] = v
      break
    }
    case 4:
      target[someKey] = undefined
      break
    case 5:
      target[someKey] = e.value
      break
    case 6:
      if (keys.length > 0) Object.defineProperty(target, someKey, { enumerable: false })
      else Object.defineProperty(target, e.key, { value: e.value, enumerable: false, configurable: true })
      break
    case 7:
      target[Symbol("extra")] = e.value
      break
    case 8:
      Object.setPrototypeOf(target, null)
      break
    case 9:
      Object.setPrototypeOf(target, Array.isArray(target) ? class extends Array {}.prototype : NotPlain.prototype)
      break
    case 10:
      Object.defineProperty(target, "toJSON", {
        value: () => "replaced",
        enumerable: e.at % 2 === 0,
        configurable: true
      })
      break
    case 11: {
      // a getter giving the same value every time
      if (keys.length > 0) {
        const v = target[someKey]
        Object.defineProperty(target, someKey, { get: () => v, enumerable: true, configurable: true })
      }
      break
    }
    case 12:
      if (Array.isArray(target)) target.length = target.length + 1
      else target[e.key] = e.value
      break
    case 13:
      if (Array.isArray(target)) target.push(e.value)
      else Object.setPrototypeOf(target, { [e.key]: e.value })
      break
    case 14:
      if (Array.isArray(target)) target.pop()
      else delete target[e.key]
      break
    case 15:
      if (Array.isArray(target) && target.length > 0) delete target[e.at % target.length]
      break
    case 16:
      ;(target as Record<string, unknown>)["named"] = e.value
      break
    case 17: {
      // a field renamed: an optional sibling in place of a required one
      if (keys.length > 0) {
        const v = target[someKey]
        delete target[someKey]
        target[e.key] = v
      }
      break
    }
    case 18: {
      // a getter that throws
      Object.defineProperty(target, someKey, {
        get: () => {
          throw new Error("getter")
        },
        enumerable: true,
        configurable: true
      })
      break
    }
    default:
      return clone(root)
  }
  return root
}

const nearMiss = (s: Shape): fc.Arbitrary<unknown> =>
  fc.tuple(s.conforming, fc.array(edit, { minLength: 1, maxLength: 3 })).map(([v, edits]) => {
    let root = clone(v)
    for (const e of edits) {
      try {
        root = applyEdit(root, e)
      } catch {
        // an edit that does not apply (e.g. redefining a property an earlier edit made non-configurable)
      }
    }
    return root
  })

// ---------------------------------------------------------------------------------------------------------------
// the oracle
// ---------------------------------------------------------------------------------------------------------------

const jsonOf = (u: unknown): string => {
  try {
    return String(JSON.stringify(u))
  } catch (e) {
    return `throws ${String(e)}`
  }
}

/**
 * Is `r` (what the parser returned) the same value as `u`: the same reference, or the same primitive, or the same
 * prototype and own enumerable keys in the same order with the same values (and the same own symbol keys when
 * `symbols`), for arrays the same length and elements, no hole in either.
 */
const sameValue = (u: unknown, r: unknown, symbols: boolean): boolean => {
  if (Object.is(u, r)) return true
  if (u === null || r === null || typeof u !== "object" || typeof r !== "object") return false
  if (Object.getPrototypeOf(u) !== Object.getPrototypeOf(r)) return false
  if (Array.isArray(u)) {
    if (!Array.isArray(r) || u.length !== r.length) return false
    for (let i = 0; i < u.length; i++) if (!(i in u) || !(i in r) || !sameValue(u[i], r[i], symbols)) return false
    return true
  }
  const uk = Object.keys(u)
  const rk = Object.keys(r)
  if (uk.length !== rk.length || uk.some((k, i) => rk[i] !== k)) return false
  if (symbols && Object.getOwnPropertySymbols(u).length + Object.getOwnPropertySymbols(r).length > 0) return false
  return uk.every((k) => sameValue((u as Record<string, unknown>)[k], (r as Record<string, unknown>)[k], symbols))
}

const parserAgrees = (schema: AnySchema, u: unknown, symbols: boolean): void => {
  const decoded = Schema.decodeUnknownEither(schema)(u)
  const encoded = Schema.encodeEither(schema)(u)
  expect(Either.isRight(decoded), "decodes").toBe(true)
  expect(Either.isRight(encoded), "encodes").toBe(true)
  for (const result of [decoded, encoded]) {
    if (Either.isRight(result)) {
      expect(jsonOf(result.right)).toBe(jsonOf(u))
      expect(sameValue(u, result.right, symbols), "the parser returns the same value").toBe(true)
    }
  }
}

describe("plain Schema fast path", () => {
  const values = (s: Shape) => fc.oneof(s.conforming, nearMiss(s), nearMiss(s), fc.anything({ maxDepth: 2 }))

  it("accepts a value only when decoding and encoding give it back unchanged, property order included", () => {
    let accepted = 0
    let rejected = 0
    fc.assert(
      fc.property(
        shape.chain((s) => fc.tuple(fc.constant(s), fc.array(values(s), { minLength: 1, maxLength: 8 }))),
        ([s, us]) => {
          const check = plainCheck(s.schema)
          expect(check !== undefined).toBe(s.plain)
          if (check === undefined) return
          for (const u of us) {
            if (check!(u)) {
              accepted++
              parserAgrees(s.schema, u, true)
            } else rejected++
          }
        }
      ),
      params
    )
    console.info(
      `[property] plain-schema: ${accepted} values accepted (and checked against the parser), ${rejected} refused`
    )
    // both branches ran often: the property says something
    expect(accepted).toBeGreaterThan(RUNS)
    expect(rejected).toBeGreaterThan(RUNS)
  })

  it("with symbol keys ignored, accepts a value only when the parser gives back the same JSON and string keys", () => {
    fc.assert(
      fc.property(
        shape.chain((s) => fc.tuple(fc.constant(s), fc.array(values(s), { minLength: 1, maxLength: 8 }))),
        ([s, us]) => {
          const check = plainCheck(s.schema, { symbolKeys: "ignore" })
          if (check === undefined) return
          for (const u of us) if (check(u)) parserAgrees(s.schema, u, false)
        }
      ),
      params
    )
  })

  it("accepts every value of the exact shape (the fast path is taken)", () => {
    let checked = 0
    fc.assert(
      fc.property(
        shape.chain((s) => fc.tuple(fc.constant(s), fc.array(s.conforming, { minLength: 1, maxLength: 4 }))),
        ([s, us]) => {
          if (!s.unambiguous || !s.plain) return
          const check = plainCheck(s.schema)!
          const ignoring = plainCheck(s.schema, { symbolKeys: "ignore" })!
          for (const u of us) {
            checked++
            expect(check(u), fc.stringify(u)).toBe(true)
            expect(ignoring(u)).toBe(true)
            // and the oracle agrees that the shape is right
            parserAgrees(s.schema, u, true)
          }
        }
      ),
      params
    )
    expect(checked).toBeGreaterThan(RUNS)
  })
})

describe("plain Schema: cases", () => {
  const User = Schema.Struct({
    id: Schema.Number,
    name: Schema.String,
    roles: Schema.Array(Schema.String),
    nick: Schema.optional(Schema.String),
    team: Schema.optionalWith(Schema.String, { exact: true })
  })
  const ada = () => ({ id: 1, name: "Ada", roles: ["admin"] })

  it("has no check for a Schema with a transformation, a declaration or anything else it does not understand", () => {
    class Person extends Schema.Class<Person>("Person")({ name: Schema.String }) {}
    const notPlain: ReadonlyArray<AnySchema> = [
      Schema.NumberFromString,
      Schema.Date,
      Schema.DateFromSelf,
      Schema.Option(Schema.String),
      Schema.OptionFromNullOr(Schema.String),
      Person,
      Schema.Trim,
      Schema.BigInt,
      Schema.Struct({ a: Schema.Number }).pipe(Schema.filter((s) => s.a > 0)),
      Schema.Array(Schema.String).pipe(Schema.minItems(1)),
      Schema.Record({ key: Schema.String, value: Schema.Number }),
      Schema.Struct({ a: Schema.Number }, Schema.Record({ key: Schema.String, value: Schema.Number })),
      Schema.Struct({ a: Schema.optionalWith(Schema.Number, { default: () => 0 }) }),
      Schema.Struct({ a: Schema.propertySignature(Schema.Number).pipe(Schema.fromKey("b")) }),
      Schema.Struct({ a: Schema.Number }).annotations({ parseOptions: { onExcessProperty: "preserve" } }),
      Schema.Struct({ a: Schema.Number }).annotations({ decodingFallback: () => Either.right({ a: 0 }) }),
      Schema.TemplateLiteral("a", Schema.String),
      Schema.suspend((): AnySchema => Schema.String),
      Schema.Struct({ [Symbol.for("k")]: Schema.Number }),
      Schema.Struct({ ["__proto__"]: Schema.Number }),
      Schema.Tuple([Schema.String], Schema.Number, Schema.Boolean),
      Schema.parseJson(Schema.Struct({ a: Schema.Number }))
    ]
    // members picked by a literal field named like a property of Object.prototype: the parser cannot be built
    const picked = Schema.Union(Schema.Struct({ toString: Schema.Literal(1) }), Schema.Null)
    expect(() => Schema.decodeUnknownEither(picked)).toThrow()
    expect(plainCheck(picked)).toBeUndefined()
    for (const s of notPlain) expect(plainCheck(s), String(s.ast)).toBeUndefined()
    // nested anywhere
    for (const inner of [Schema.NumberFromString, Schema.Date, Schema.Option(Schema.String), Person]) {
      expect(plainCheck(Schema.Struct({ a: Schema.String, b: inner as AnySchema }))).toBeUndefined()
      expect(plainCheck(Schema.Array(Schema.Struct({ b: Schema.optional(inner as AnySchema) })))).toBeUndefined()
      expect(plainCheck(Schema.Union(Schema.String, inner as AnySchema))).toBeUndefined()
      expect(plainCheck(Schema.Tuple(Schema.String, inner as AnySchema))).toBeUndefined()
    }
  })

  it("accepts exactly the shape of a struct: fields in order, no extra key, no undefined value, a plain object", () => {
    const check = plainCheck(User)!
    expect(check(ada())).toBe(true)
    expect(check({ ...ada(), nick: "a", team: "b" })).toBe(true)
    expect(check({ ...ada(), team: "b" })).toBe(true)
    expect(check({ name: "Ada", id: 1, roles: ["admin"] })).toBe(false) // order
    expect(check({ ...ada(), team: "b", nick: "a" })).toBe(false) // order of optional fields
    expect(check({ ...ada(), extra: 1 })).toBe(false) // the parser would drop it
    expect(check({ id: 1, name: "Ada" })).toBe(false)
    expect(check({ ...ada(), nick: undefined })).toBe(false)
    expect(check({ ...ada(), team: undefined })).toBe(false) // the parser refuses it
    expect(check({ ...ada(), roles: ["admin", undefined] })).toBe(false)
    expect(check({ ...ada(), roles: [, "admin"] })).toBe(false) // a hole
    expect(check({ ...ada(), [Symbol("s")]: 1 })).toBe(false)
    expect(plainCheck(User, { symbolKeys: "ignore" })!({ ...ada(), [Symbol("s")]: 1 })).toBe(true)
    expect(check(Object.assign(Object.create(null), ada()))).toBe(false)
    expect(check(Object.assign(Object.create({ toJSON: () => 1 }), ada()))).toBe(false)
    expect(check({ ...ada(), roles: Object.assign(["admin"], { toJSON: () => [] }) })).toBe(false)
    const hidden = ada()
    Object.defineProperty(hidden, "nick", { value: "hidden", enumerable: false })
    expect(check(hidden)).toBe(false) // the parser would output nick
    const hiddenRequired = { id: 1, roles: ["admin"] }
    Object.defineProperty(hiddenRequired, "name", { value: "Ada", enumerable: false })
    expect(check(hiddenRequired)).toBe(false)
    const throwing = ada()
    Object.defineProperty(throwing, "name", {
      enumerable: true,
      get: () => {
        throw new Error("no")
      }
    })
    expect(check(throwing)).toBe(false)
    for (const u of [null, undefined, "x", 1, [], ada, new Date(0)]) expect(check(u)).toBe(false)
  })

  it("follows the order in which JavaScript enumerates the parser's output (integer-like keys first)", () => {
    const check = plainCheck(Schema.Struct({ b: Schema.String, "1": Schema.Number, a: Schema.String }))!
    const u = { b: "b", "1": 1, a: "a" }
    expect(Object.keys(u)).toEqual(["1", "b", "a"])
    expect(check(u)).toBe(true)
    expect(check({ a: "a", b: "b", "1": 1 })).toBe(false)
    // a TypeLiteral built by hand may list "1" after "b": the parser's output still enumerates "1" first
    const ps = (name: string, type: AST.AST) => new AST.PropertySignature(name, type, false, true)
    const handMade = Schema.make<any, any, never>(
      new AST.TypeLiteral([ps("b", AST.stringKeyword), ps("1", AST.numberKeyword)], [])
    )
    const v = { b: "b", "1": 1 }
    expect(Object.keys(Schema.decodeUnknownSync(handMade)(v))).toEqual(["1", "b"])
    expect(plainCheck(handMade)!(v)).toBe(true)
  })

  it("refuses an inherited enumerable key (a polluted Object.prototype)", () => {
    const check = plainCheck(
      Schema.Struct({ a: Schema.String, b: Schema.optionalWith(Schema.String, { exact: true }) })
    )!
    const proto = Object.prototype as Record<string, unknown>
    proto["b"] = "polluted"
    try {
      expect(check({ a: "a" })).toBe(false)
      expect(check({ a: "a", b: "b" })).toBe(true)
    } finally {
      delete proto["b"]
    }
    expect(check({ a: "a" })).toBe(true)
  })

  it("accepts a union member only when the parser cannot pick another member that changes the value", () => {
    const A = Schema.Struct({ a: Schema.Number })
    const AB = Schema.Struct({ a: Schema.Number, b: Schema.Number })
    const ab = { a: 1, b: 2 }
    // the parser tries A first and strips b
    expect(Schema.decodeUnknownSync(Schema.Union(A, AB))(ab)).toEqual({ a: 1 })
    expect(plainCheck(Schema.Union(A, AB))!(ab)).toBe(false)
    // AB cannot match (b is missing), so whatever the order the parser returns { a: 1 }
    expect(plainCheck(Schema.Union(A, AB))!({ a: 1 })).toBe(true)
    expect(plainCheck(Schema.Union(AB, A))!({ a: 1 })).toBe(true)
    // both match and both return it unchanged
    const AorB = Schema.Union(A, Schema.Struct({ a: Schema.Number, b: Schema.optional(Schema.Number) }))
    expect(plainCheck(AorB)!({ a: 1 })).toBe(true)
    expect(plainCheck(AorB)!(ab)).toBe(false)
    const tagged = Schema.Union(
      Schema.Struct({ kind: Schema.Literal("a"), a: Schema.Number }),
      Schema.Struct({ kind: Schema.Literal("b"), a: Schema.Number, b: Schema.Number })
    )
    expect(plainCheck(tagged)!({ kind: "b", a: 1, b: 2 })).toBe(true)
    expect(plainCheck(tagged)!({ kind: "a", a: 1 })).toBe(true)
    expect(plainCheck(tagged)!({ kind: "a", a: 1, b: 2 })).toBe(false)
    const mixed = plainCheck(Schema.Union(Schema.String, Schema.Array(Schema.Number), Schema.Null))!
    for (const u of ["x", [1, 2], null]) expect(mixed(u)).toBe(true)
    expect(mixed([1, "x"])).toBe(false)
  })

  it("runs a filter of a primitive as the parser does, and refuses a value when the filter throws", () => {
    const Short = Schema.String.pipe(
      Schema.maxLength(3),
      Schema.filter((s) => {
        if (s === "boom") throw new Error("filter")
        return true
      })
    )
    const check = plainCheck(Schema.Struct({ id: Schema.Int, short: Short, tag: Schema.NonEmptyString }))!
    expect(check({ id: 1, short: "abc", tag: "t" })).toBe(true)
    expect(check({ id: 1.5, short: "abc", tag: "t" })).toBe(false)
    expect(check({ id: 1, short: "abcd", tag: "t" })).toBe(false)
    expect(check({ id: 1, short: "abc", tag: "" })).toBe(false)
    expect(check({ id: 1, short: "boom", tag: "t" })).toBe(false)
    expect(Option.isSome(Option.fromNullable(plainCheck(Schema.String.pipe(Schema.brand("B")))))).toBe(true)
  })

  it("never accepts undefined, even where the parser would (Unknown, Void, optional)", () => {
    for (const s of [Schema.Unknown, Schema.Any, Schema.Void, Schema.Undefined, Schema.UndefinedOr(Schema.String)]) {
      expect(plainCheck(s as AnySchema)!(undefined)).toBe(false)
    }
    const loose = plainCheck(Schema.Struct({ a: Schema.Unknown }))!
    expect(loose({ a: undefined })).toBe(false)
    expect(loose({})).toBe(false)
    const anything = { a: new Date(0) }
    expect(loose(anything)).toBe(true) // the parser returns the same Date: the caller checks JSON faithfulness
  })
})
