/**
 * LruOrder.oldest (pure): after any sequence of sets, moves, deletes, clears and evictions, the key it returns is the
 * first key of the Map in insertion order, exactly what a fresh `map.keys().next()` returns.
 */
import * as fc from "fast-check"
import { describe, expect, it } from "vitest"
import { LruOrder } from "../src/lruOrder.js"
import { seeded } from "./support/property.js"

const params = seeded("lru-order")

type Op =
  | { readonly _tag: "set"; readonly key: number }
  | { readonly _tag: "move"; readonly key: number }
  | { readonly _tag: "delete"; readonly key: number }
  | { readonly _tag: "evict" }
  | { readonly _tag: "clear" }

const key = fc.integer({ min: 0, max: 20 })
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: key.map((k) => ({ _tag: "set" as const, key: k })) },
  { weight: 3, arbitrary: key.map((k) => ({ _tag: "move" as const, key: k })) },
  { weight: 2, arbitrary: key.map((k) => ({ _tag: "delete" as const, key: k })) },
  { weight: 4, arbitrary: fc.constant({ _tag: "evict" as const }) },
  { weight: 1, arbitrary: fc.constant({ _tag: "clear" as const }) }
)

describe("LruOrder", () => {
  it("returns the Map's first key after any sequence of changes", () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
        const map = new Map<number, { touched: number }>()
        const order = new LruOrder(map, 8)
        for (const o of ops) {
          switch (o._tag) {
            case "set":
              map.set(o.key, { touched: 0 })
              break
            case "move":
              if (map.delete(o.key)) map.set(o.key, { touched: 0 })
              break
            case "delete":
              map.delete(o.key)
              break
            case "clear":
              map.clear()
              break
            case "evict": {
              const expected = map.keys().next()
              const got = order.oldest()
              expect(got).toBe(expected.done === true ? undefined : expected.value)
              if (got !== undefined) map.delete(got)
            }
          }
        }
      }),
      params
    )
  })
})
