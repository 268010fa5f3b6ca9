/**
 * Faithful JSON: serialises a Schema-encoded value only when `JSON.parse` will give back an
 * equal value. JSON.stringify silently turns NaN and ±Infinity into null, drops functions and
 * symbols, throws on BigInt and cycles, and flattens class instances (Date, Map, …); each of
 * these is reported as a reason instead.
 */

/** @internal */
export type JsonResult =
  { readonly _tag: "ok"; readonly json: string } | { readonly _tag: "err"; readonly reason: string }

const isPlainObject = (u: object): boolean => {
  const proto = Object.getPrototypeOf(u)
  return proto === Object.prototype || proto === null
}

const describePath = (path: ReadonlyArray<string | number>): string => {
  let out = "$"
  for (const p of path)
    out += typeof p === "number" ? `[${p}]` : /^[A-Za-z_$][\w$]*$/.test(p) ? `.${p}` : `[${JSON.stringify(p)}]`
  return out.length > 120 ? out.slice(0, 117) + "..." : out
}

/**
 * Returns the first reason why `value` cannot round-trip through JSON, or undefined.
 * Iterative-recursive with an explicit ancestor set for cycle detection.
 * @internal
 */
export const unfaithfulReason = (value: unknown): string | undefined => {
  const ancestors = new Set<object>()
  const path: Array<string | number> = []
  const visit = (u: unknown, inArray: boolean): string | undefined => {
    switch (typeof u) {
      case "string":
      case "boolean":
        return undefined
      case "number":
        return Number.isFinite(u) ? undefined : `${u} at ${describePath(path)} is not representable in JSON`
      case "bigint":
        return `a BigInt at ${describePath(path)} is not representable in JSON (encode it, e.g. with Schema.BigInt)`
      case "undefined":
        return inArray ? `undefined at ${describePath(path)} would become null in JSON` : undefined
      case "function":
        return `a function at ${describePath(path)} is not representable in JSON`
      case "symbol":
        return `a symbol at ${describePath(path)} is not representable in JSON`
      case "object": {
        if (u === null) return undefined
        if (ancestors.has(u)) return `a circular reference at ${describePath(path)}`
        if (Array.isArray(u)) {
          ancestors.add(u)
          for (let i = 0; i < u.length; i++) {
            path.push(i)
            const r = visit(u[i], true)
            path.pop()
            if (r !== undefined) return r
          }
          ancestors.delete(u)
          return undefined
        }
        if (!isPlainObject(u)) {
          const name = (u as { constructor?: { name?: unknown } }).constructor?.name
          return (
            `an instance of ${typeof name === "string" ? name : "a class"} at ${describePath(path)} is not ` +
            `plain JSON (use a Schema that encodes it, e.g. Schema.Date)`
          )
        }
        ancestors.add(u)
        for (const k of Object.keys(u)) {
          path.push(k)
          const r = visit((u as Record<string, unknown>)[k], false)
          path.pop()
          if (r !== undefined) return r
        }
        if (Object.getOwnPropertySymbols(u).length > 0) {
          return `symbol-keyed properties at ${describePath(path)} are not representable in JSON`
        }
        ancestors.delete(u)
        return undefined
      }
    }
  }
  return visit(value, false)
}

/** @internal */
export const toFaithfulJson = (value: unknown): JsonResult => {
  const reason = unfaithfulReason(value)
  if (reason !== undefined) return { _tag: "err", reason }
  return { _tag: "ok", json: JSON.stringify(value) }
}

/**
 * Canonical JSON: object keys sorted, no whitespace, so structurally equal values give the
 * same text whatever the property order. The value must already be faithful.
 * @internal
 */
export const canonicalJson = (value: unknown): string => {
  if (value === null || typeof value !== "object") return JSON.stringify(value)
  if (Array.isArray(value)) {
    let out = "["
    for (let i = 0; i < value.length; i++) out += (i === 0 ? "" : ",") + canonicalJson(value[i])
    return out + "]"
  }
  const record = value as Record<string, unknown>
  const keys = Object.keys(record)
    .filter((k) => record[k] !== undefined)
    .sort()
  let out = "{"
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!
    out += (i === 0 ? "" : ",") + JSON.stringify(k) + ":" + canonicalJson(record[k])
  }
  return out + "}"
}
