/**
 * Properties of the key layout on LocalOnly (no Redis): a Keyspace never lets two distinct (keyspace, tenant, key)
 * triples share an entry or a clear reach outside its partition. The pure properties of the layout (injective, SCAN
 * patterns, segments) are the core's: core/test/keys.test.ts.
 *
 * Seeded: FC_SEED reproduces a run (printed below), FC_RUNS raises the number of runs (never below 1,000).
 */
import { Effect, Option } from "effect"
import * as fc from "fast-check"
import { describe, expect, it } from "vitest"
import { localOnly } from "effect-failclosed"
import { hostileString } from "../../core/test/support/property.js"
import { inTarget, partitionScenario, scenarioKeyspaces, seeded } from "../support/property.js"

const params = seeded("key-layout")

// --- Keyspace on LocalOnly -------------------------------------------------------------------------------------------

const keyspaces = scenarioKeyspaces(1_000)

/** entries over few names, tenants and keys, so that partitions share names and near-collide */
const entriesArb = partitionScenario({
  hostileString,
  maxTenantLength: 1_000,
  maxKeyLength: 32,
  keyDepth: 2,
  maxEntries: 12
})

describe("Keyspace on LocalOnly", () => {
  it("distinct (keyspace, tenant, key) triples never share an entry", async () => {
    await fc.assert(
      fc.asyncProperty(entriesArb, async ({ entries }) => {
        const values = await Effect.runPromise(
          Effect.gen(function* () {
            yield* keyspaces.setAll(entries)
            return yield* keyspaces.readAll(entries)
          }).pipe(Effect.provide(localOnly()))
        )
        expect(values).toEqual(entries.map((_, i) => Option.some(i)))
      }),
      params
    )
  })

  it("clear of a tenant, the untenanted partition or a whole keyspace deletes nothing outside it", async () => {
    await fc.assert(
      fc.asyncProperty(entriesArb, async ({ entries, target }) => {
        const [deleted, values] = await Effect.runPromise(
          Effect.gen(function* () {
            yield* keyspaces.setAll(entries)
            const deleted = yield* keyspaces.clear(target)
            return [deleted, yield* keyspaces.readAll(entries)] as const
          }).pipe(Effect.provide(localOnly()))
        )
        expect(values).toEqual(entries.map((e, i) => (inTarget(e, target) ? Option.none() : Option.some(i))))
        expect(deleted).toBe(entries.filter((e) => inTarget(e, target)).length)
      }),
      params
    )
  })
})
