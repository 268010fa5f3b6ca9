/**
 * Plain Schemas: a fast path past Effect's Schema parser. For a Schema made only of parts whose parser returns its
 * input or an exact copy of it (structs, arrays, tuples, strings, numbers, booleans, literals, unions of these, …), a
 * value of the exact shape decodes and encodes to a value indistinguishable from itself, so the caller may use the
 * value as it is. `plainCheck` compiles such a Schema, once, into a check of that exact shape.
 *
 * The contract, for the default parse options (what `Schema.decodeUnknownEither(schema)(u)` and
 * `Schema.encodeEither(schema)(u)` use): when the check accepts `u`, both succeed and return `u` itself or a fresh
 * value `r` equal to it: `JSON.stringify(r) === JSON.stringify(u)`, and structurally: the same prototype
 * (`Object.prototype`, `Array.prototype`), the same own enumerable string keys in the same order with equal values,
 * the same array lengths and equal elements, and (unless symbol keys are ignored, see {@link PlainCheckOptions}) no
 * own symbol keys. Not compared, because the parser drops them and JSON ignores them: non-enumerable own properties
 * that are not fields, and named (non-index) own properties of arrays; a `toJSON` function, which JSON does not
 * ignore, is a rejection wherever it is found. When the check rejects, nothing is promised: the caller runs the
 * parser.
 *
 * What the check accepts, per part of the Schema:
 * - String, Number (any number: JSON faithfulness is the caller's check), Boolean, Literal, Enums, brands (an
 *   annotation only), and Unknown, Any and Void (the parser returns the input itself: whatever it holds, it is the
 *   same reference): the values the parser accepts, except `undefined`, which is never accepted anywhere (an
 *   undefined property or element, a hole).
 * - Struct: an object whose prototype is `Object.prototype`, whose own enumerable keys are fields, all required
 *   fields included, in the order the parser builds its output (schema order, integer-like keys first as
 *   JavaScript orders them); an optional field (`optional`, `optionalWith({ exact: true })`) may be absent, but not
 *   as a non-enumerable own property.
 * - Array, NonEmptyArray, Tuple (required and optional elements, at most one rest element): an array whose
 *   prototype is `Array.prototype` and whose length and elements fit.
 * - Union: when one member accepts, and every other member either returns its input itself, or accepts too, or
 *   certainly fails (the parser returns its first success, trying members in an order of its own).
 * - Refinement (filter) of a part that returns its input itself (a string, a number, a literal, …): the filter is
 *   called on the value, as the parser calls it; a filter that throws is a rejection.
 *
 * - Struct without fields: anything but null and undefined (the parser returns it itself).
 *
 * Everything else makes the Schema not plain (`plainCheck` returns undefined): transformations (NumberFromString,
 * Date, Option, classes, defaults, renamed keys), declarations, refinements of structs and arrays, index signatures
 * (Record), suspended (recursive) Schemas, template literals, BigInt/Symbol/Object keywords, symbol or `__proto__`
 * keys, unions that pick members by a literal field named like a property of `Object.prototype` (the parser cannot
 * be built for them), tuples with more than one rest element, and any part annotated with parse options or a
 * decoding fallback (both change what the parser does).
 *
 * Assumptions: getters and Proxies give the same answer each time they are read (the check reads a property once,
 * and so does the parser); `Array.prototype` has no indexed properties (a hole would read through to them). A check
 * that throws (a throwing getter or Proxy) rejects.
 * @internal
 */
import * as Option from "effect/Option"
import type * as Schema from "effect/Schema"
import * as AST from "effect/SchemaAST"

// node tags: one switch over one class of nodes, no closure per node, no allocation while checking
/** typeof u === "string" */
const STRING = 0
/** typeof u === "number" */
const NUMBER = 1
/** typeof u === "boolean" */
const BOOLEAN = 2
/** u === literal */
const LITERAL = 3
/** u is one of the enum values */
const ENUMS = 4
/** the parser accepts anything and returns it (Unknown, Any, Void) */
const ANYTHING = 5
/** the parser accepts only undefined (UndefinedKeyword), which is never accepted here */
const UNDEFINED = 6
/** the parser accepts nothing (Never) */
const NEVER = 7
/** the parser accepts anything but null and undefined and returns it (a Struct without fields) */
const NOT_NULLISH = 8
/** a Struct with fields */
const STRUCT = 9
/** an Array or Tuple */
const TUPLE = 10
/** a union whose members all return their input itself */
const UNION_OF_IDENTITIES = 11
/** any other union */
const UNION = 12
/** a refinement of a node that returns its input itself */
const REFINEMENT = 13

class Node {
  constructor(
    readonly tag: number,
    /** on success the parser returns the input itself (===), not a copy */
    readonly identity: boolean,
    /** LITERAL: the literal; ENUMS: the values */
    readonly value: unknown = undefined,
    /** STRUCT: field types; TUPLE: element types; unions: members; REFINEMENT: [from] */
    readonly members: ReadonlyArray<Node> = [],
    /** STRUCT: field names in the order of the parser's output; UNION: the names the parser reads to pick members */
    readonly keys: ReadonlyArray<string> = [],
    /** STRUCT: which fields are optional */
    readonly optional: ReadonlyArray<boolean> = [],
    /** STRUCT: reject own symbol keys */
    readonly symbols: boolean = false,
    /** TUPLE: the rest element, if any */
    readonly rest: Node | undefined = undefined,
    /** TUPLE: shortest length accepted */
    readonly minLength: number = 0,
    /** TUPLE: longest length accepted */
    readonly maxLength: number = 0,
    /** REFINEMENT: the refinement (its filter is called) */
    readonly refinement: AST.Refinement | undefined = undefined
  ) {}
}

const hasOwn = Object.prototype.hasOwnProperty
const objectPrototype = Object.prototype
const arrayPrototype = Array.prototype

/** true when the parser, given `u`, succeeds and returns `u` or an equal copy of it */
const accepts = (node: Node, u: unknown): boolean => {
  switch (node.tag) {
    case STRING:
      return typeof u === "string"
    case NUMBER:
      return typeof u === "number"
    case BOOLEAN:
      return typeof u === "boolean"
    case LITERAL:
      return u === node.value
    case ENUMS: {
      const values = node.value as ReadonlyArray<unknown>
      for (let i = 0; i < values.length; i++) if (values[i] === u) return true
      return false
    }
    case ANYTHING:
      return u !== undefined
    case NOT_NULLISH:
      return u !== undefined && u !== null
    case STRUCT:
      return acceptsStruct(node, u)
    case TUPLE:
      return acceptsTuple(node, u)
    case UNION_OF_IDENTITIES: {
      const members = node.members
      for (let i = 0; i < members.length; i++) if (accepts(members[i]!, u)) return true
      return false
    }
    case UNION:
      return acceptsUnion(node, u)
    case REFINEMENT:
      return accepts(node.members[0]!, u) && passes(node.refinement!, u)
    default:
      // UNDEFINED (undefined is never accepted) and NEVER
      return false
  }
}

const acceptsStruct = (node: Node, u: unknown): boolean => {
  if (typeof u !== "object" || u === null) return false
  const keys = node.keys
  const types = node.members
  const n = keys.length
  let j = 0
  for (const k in u) {
    // an inherited enumerable key (a polluted Object.prototype) is not a field the parser reads as present
    if (!hasOwn.call(u, k)) return false
    while (j < n && keys[j] !== k) {
      if (!absentOptional(node, u, j)) return false
      j++
    }
    if (j === n) return false
    if (!accepts(types[j]!, (u as Record<string, unknown>)[k])) return false
    j++
  }
  for (; j < n; j++) if (!absentOptional(node, u, j)) return false
  // after the loop, which has checked the shape of u: cheaper there
  if (Object.getPrototypeOf(u) !== objectPrototype) return false
  // own or inherited, enumerable or not: JSON.stringify would call it, and the parser's output has none
  if (typeof (u as { toJSON?: unknown }).toJSON === "function") return false
  // the parser drops symbol keys
  return !node.symbols || Object.getOwnPropertySymbols(u).length === 0
}

/** field j may be missing from the enumeration: optional, and not a non-enumerable own property either */
const absentOptional = (node: Node, u: object, j: number): boolean =>
  node.optional[j]! && !hasOwn.call(u, node.keys[j]!)

const acceptsTuple = (node: Node, u: unknown): boolean => {
  if (!Array.isArray(u)) return false
  const len = u.length
  if (len < node.minLength || len > node.maxLength) return false
  const elements = node.members
  const fixed = len < elements.length ? len : elements.length
  let i = 0
  // a hole reads as undefined, which nothing accepts
  for (; i < fixed; i++) if (!accepts(elements[i]!, u[i])) return false
  const rest = node.rest
  if (rest !== undefined) for (; i < len; i++) if (!accepts(rest, u[i])) return false
  return Object.getPrototypeOf(u) === arrayPrototype && typeof (u as { toJSON?: unknown }).toJSON !== "function"
}

/**
 * One member accepts, and every other member either returns its input itself, or accepts too (returns an equal
 * copy), or certainly fails: the parser, which returns its first success in an order of its own, returns a value
 * equal to `u` whichever member that is.
 */
const acceptsUnion = (node: Node, u: unknown): boolean => {
  const members = node.members
  let found = false
  for (let i = 0; i < members.length; i++) {
    const member = members[i]!
    if (member.identity) {
      if (!found && accepts(member, u)) found = true
    } else if (accepts(member, u)) {
      found = true
    } else if (mayMatch(member, u)) {
      return false
    }
  }
  if (!found) return false
  // the parser picks candidates with String(u[key]) for these keys: a value whose String() may throw is refused
  if (typeof u === "object" && u !== null) {
    const keys = node.keys
    for (let j = 0; j < keys.length; j++) {
      const key = keys[j]!
      if (hasOwn.call(u, key)) {
        const v = (u as Record<string, unknown>)[key]
        if ((typeof v === "object" && v !== null) || typeof v === "function") return false
      }
    }
  }
  return true
}

const passes = (refinement: AST.Refinement, u: unknown): boolean => {
  try {
    // the options the parser passes when it is given none (Schema.decodeUnknownEither(schema)(u))
    return Option.isNone(refinement.filter(u, AST.defaultParseOption, refinement))
  } catch {
    return false
  }
}

/**
 * False only when the parser certainly fails on `u` (decoding or encoding); true when it may succeed. Asked of the
 * members of a union that do not return their input itself.
 */
const mayMatch = (node: Node, u: unknown): boolean => {
  switch (node.tag) {
    case STRING:
    case NUMBER:
    case BOOLEAN:
    case LITERAL:
    case ENUMS:
      return accepts(node, u)
    case ANYTHING:
      return true
    case UNDEFINED:
      return u === undefined
    case NOT_NULLISH:
      return u !== undefined && u !== null
    case STRUCT: {
      // the parser needs a non-array object, and parses a missing required field as undefined
      if (typeof u !== "object" || u === null || Array.isArray(u)) return false
      const keys = node.keys
      const types = node.members
      for (let j = 0; j < keys.length; j++) {
        if (!node.optional[j] && !mayMatch(types[j]!, (u as Record<string, unknown>)[keys[j]!])) return false
      }
      return true
    }
    case TUPLE: {
      if (!Array.isArray(u)) return false
      const len = u.length
      if (len < node.minLength || len > node.maxLength) return false
      const elements = node.members
      const fixed = len < elements.length ? len : elements.length
      for (let i = 0; i < fixed; i++) if (!mayMatch(elements[i]!, u[i])) return false
      return true
    }
    case UNION_OF_IDENTITIES:
    case UNION: {
      const members = node.members
      for (let i = 0; i < members.length; i++) if (mayMatch(members[i]!, u)) return true
      return false
    }
    case REFINEMENT:
      return mayMatch(node.members[0]!, u)
    default:
      // NEVER
      return false
  }
}

/**
 * Options of {@link plainCheck}.
 * @internal
 */
export interface PlainCheckOptions {
  /**
   * `"reject"` (the default): a value with an own symbol-keyed property anywhere is rejected (the parser drops
   * them). `"ignore"`: symbol keys are not looked at, which saves about 40 ns per object; for values that have
   * none (what `JSON.parse` returns), or when the caller only serialises the value (JSON ignores them).
   */
  readonly symbolKeys?: "reject" | "ignore" | undefined
}

/** annotations that change what the parser does (anywhere in the Schema: parse options are inherited) */
const changesParsing = (annotated: AST.Annotated): boolean =>
  hasOwn.call(annotated.annotations, AST.ParseOptionsAnnotationId) ||
  hasOwn.call(annotated.annotations, AST.DecodingFallbackAnnotationId)

const compile = (ast: AST.AST, symbols: boolean): Node | undefined => {
  if (changesParsing(ast)) return undefined
  switch (ast._tag) {
    case "StringKeyword":
      return new Node(STRING, true)
    case "NumberKeyword":
      return new Node(NUMBER, true)
    case "BooleanKeyword":
      return new Node(BOOLEAN, true)
    case "Literal":
      return new Node(LITERAL, true, ast.literal)
    case "Enums":
      return new Node(
        ENUMS,
        true,
        ast.enums.map(([, value]) => value)
      )
    case "UnknownKeyword":
    case "AnyKeyword":
    case "VoidKeyword":
      return new Node(ANYTHING, true)
    case "UndefinedKeyword":
      return new Node(UNDEFINED, true)
    case "NeverKeyword":
      return new Node(NEVER, true)
    case "TypeLiteral":
      return compileTypeLiteral(ast, symbols)
    case "TupleType":
      return compileTupleType(ast, symbols)
    case "Union":
      return compileUnion(ast, symbols)
    case "Refinement": {
      const from = compile(ast.from, symbols)
      // the filter sees the parser's output: only when that is the input itself does it see what the check sees
      if (from === undefined || !from.identity) return undefined
      return new Node(REFINEMENT, true, undefined, [from], [], [], false, undefined, 0, 0, ast)
    }
    default:
      // Declaration, Transformation, Suspend, TemplateLiteral, BigInt/Symbol/Object keywords, UniqueSymbol
      return undefined
  }
}

const compileTypeLiteral = (ast: AST.TypeLiteral, symbols: boolean): Node | undefined => {
  if (ast.indexSignatures.length > 0) return undefined
  if (ast.propertySignatures.length === 0) return new Node(NOT_NULLISH, true)
  const byName = new Map<string, AST.PropertySignature>()
  // the parser assigns fields in schema order: its output enumerates them as this object does
  const probe: Record<string, null> = {}
  for (const ps of ast.propertySignatures) {
    if (typeof ps.name !== "string" || ps.name === "__proto__") return undefined
    byName.set(ps.name, ps)
    probe[ps.name] = null
  }
  const keys = Object.keys(probe)
  const types: Array<Node> = []
  const optional: Array<boolean> = []
  for (const key of keys) {
    const ps = byName.get(key)!
    const type = compile(ps.type, symbols)
    if (type === undefined) return undefined
    types.push(type)
    optional.push(ps.isOptional)
  }
  return new Node(STRUCT, false, undefined, types, keys, optional, symbols)
}

const compileTupleType = (ast: AST.TupleType, symbols: boolean): Node | undefined => {
  if (ast.rest.length > 1) return undefined
  const elements: Array<Node> = []
  let required = 0
  for (const element of ast.elements) {
    const type = compile(element.type, symbols)
    if (type === undefined) return undefined
    elements.push(type)
    if (!element.isOptional) required++
  }
  let rest: Node | undefined
  if (ast.rest.length === 1) {
    rest = compile(ast.rest[0]!.type, symbols)
    if (rest === undefined) return undefined
  }
  const maxLength = rest === undefined ? elements.length : Number.MAX_SAFE_INTEGER
  return new Node(TUPLE, false, undefined, elements, [], [], false, rest, required, maxLength)
}

const compileUnion = (ast: AST.Union, symbols: boolean): Node | undefined => {
  const members: Array<Node> = []
  for (const type of ast.types) {
    const member = compile(type, symbols)
    if (member === undefined) return undefined
    members.push(member)
  }
  if (members.every((m) => m.identity)) return new Node(UNION_OF_IDENTITIES, true, undefined, members)
  // every name the parser may read to pick candidates (a superset: required fields and elements of literal type)
  const keys = new Set<string>()
  for (const type of ast.types) {
    if (AST.isTypeLiteral(type)) {
      for (const ps of type.propertySignatures) if (!ps.isOptional && AST.isLiteral(ps.type)) keys.add(String(ps.name))
    } else if (AST.isTupleType(type)) {
      type.elements.forEach((e, i) => {
        if (!e.isOptional && AST.isLiteral(e.type)) keys.add(String(i))
      })
    }
  }
  // the parser keeps these names as keys of a plain object: one that object inherits ("constructor", "toString", …)
  // makes building the parser throw (effect 3.22.4)
  for (const key of keys) if (key in objectPrototype) return undefined
  return new Node(UNION, false, undefined, members, [...keys])
}

/**
 * Compiles `schema` into a check of the exact shape whose values Schema's parser, decoding or encoding with the
 * default options, returns unchanged (see the module's documentation for what "unchanged" covers); undefined when
 * the Schema has a part this module does not fully understand. Compile once per Schema: the check allocates
 * nothing (but for `Object.getOwnPropertySymbols` when symbol keys are rejected).
 * @internal
 */
export const plainCheck = (
  schema: Schema.Schema.Any,
  options?: PlainCheckOptions
): ((u: unknown) => boolean) | undefined => {
  const node = compile(schema.ast, options?.symbolKeys !== "ignore")
  if (node === undefined) return undefined
  return (u) => {
    try {
      return accepts(node, u)
    } catch {
      // a getter or a Proxy that throws: the parser decides
      return false
    }
  }
}
