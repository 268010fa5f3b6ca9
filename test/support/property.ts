/**
 * What the property tests share: the seeded run settings, and the scenario of the partition
 * properties (entries spread over a few keyspaces, tenants and keys, so that partitions share
 * names and near-collide, and a partition to clear).
 */
import { Effect, Option, Schema } from "effect"
import * as fc from "fast-check"
import { beforeAll } from "vitest"
import { Keyspace } from "effect-failclosed"
import { canonicalJson } from "@effect-failclosed/core"

/**
 * Seeded: FC_SEED reproduces a run, FC_RUNS raises the number of runs (never below 1,000). Prints both before the
 * file's tests run.
 */
export const seeded = (file: string) => {
  const seed = Number(process.env["FC_SEED"] ?? 20_261_125)
  const numRuns = Math.max(1_000, Number(process.env["FC_RUNS"] ?? 1_000))
  beforeAll(() => {
    console.info(`[property] ${file}: seed ${seed}, ${numRuns} runs per property (reproduce with FC_SEED=${seed})`)
  })
  return { seed, numRuns }
}

export interface Entry {
  readonly keyspace: string
  readonly tenant: string | undefined
  readonly key: unknown
}

export type Target = {
  readonly keyspace: string
  readonly scope: { readonly _tag: "all" } | { readonly _tag: "one"; readonly tenant: string | undefined }
}

/** two entries are the same entry when this is equal */
const identity = (e: Entry) =>
  JSON.stringify([e.keyspace, e.tenant ?? null, e.tenant === undefined, canonicalJson(e.key)])

export const inTarget = (e: Entry, target: Target) =>
  e.keyspace === target.keyspace && (target.scope._tag === "all" || e.tenant === target.scope.tenant)

/** the names, tenant ids and keys a scenario draws its entries from */
export interface Parts {
  readonly names: ReadonlyArray<string>
  readonly tenants: ReadonlyArray<string>
  readonly keys: ReadonlyArray<unknown>
}

/**
 * Entries over at most 3 names, tenants and keys, and a target partition; `extra` adds arbitraries drawn from the
 * same parts.
 */
export const partitionScenario = <X extends Record<string, unknown> = {}>(options: {
  readonly hostileString: (maxLength: number) => fc.Arbitrary<string>
  readonly maxTenantLength: number
  readonly maxKeyLength: number
  readonly keyDepth: number
  readonly maxEntries: number
  readonly extra?: (parts: Parts) => { [K in keyof X]: fc.Arbitrary<X[K]> }
}): fc.Arbitrary<{ readonly entries: ReadonlyArray<Entry>; readonly target: Target } & X> => {
  const { hostileString } = options
  return fc
    .record({
      names: fc.uniqueArray(hostileString(128), { minLength: 1, maxLength: 3 }),
      tenants: fc.uniqueArray(hostileString(options.maxTenantLength), { minLength: 1, maxLength: 3 }),
      keys: fc.uniqueArray(
        fc.oneof(hostileString(options.maxKeyLength), fc.jsonValue({ maxDepth: options.keyDepth })),
        { minLength: 1, maxLength: 3, selector: (k) => canonicalJson(k) }
      )
    })
    .chain((parts) => {
      const { keys, names, tenants } = parts
      return fc.record({
        entries: fc.uniqueArray(
          fc.record({
            keyspace: fc.constantFrom(...names),
            tenant: fc.option(fc.constantFrom(...tenants), { nil: undefined, freq: 3 }),
            key: fc.constantFrom(...keys)
          }),
          { minLength: 1, maxLength: options.maxEntries, selector: identity }
        ),
        target: fc.record({
          keyspace: fc.constantFrom(...names),
          scope: fc.oneof(
            fc.constant({ _tag: "all" as const }),
            fc
              .option(fc.constantFrom(...tenants), { nil: undefined })
              .map((tenant) => ({ _tag: "one" as const, tenant }))
          )
        }),
        ...(options.extra?.(parts) ?? ({} as { [K in keyof X]: fc.Arbitrary<X[K]> }))
      }) as unknown as fc.Arbitrary<{ readonly entries: ReadonlyArray<Entry>; readonly target: Target } & X>
    })
}

/**
 * The keyspaces of a scenario, made once per name (construction compiles Schemas): values are numbers, keys anything,
 * tenant ids up to `maxTenantLength`.
 */
export const scenarioKeyspaces = (maxTenantLength: number) => {
  const keyspaces = new Map<string, Keyspace.Keyspace<unknown, number>>()
  const named = (name: string) => {
    let ks = keyspaces.get(name)
    if (ks === undefined) {
      ks = Keyspace.make({ name, key: Schema.Unknown, value: Schema.Number, timeToLive: "1 hour", maxTenantLength })
      keyspaces.set(name, ks)
    }
    return ks
  }
  return {
    named,
    /** writes entry i with the value i */
    setAll: (entries: ReadonlyArray<Entry>, concurrency: "unbounded" | 1 = 1) =>
      Effect.forEach(entries, (e, i) => named(e.keyspace).set(e.key, i, { tenant: e.tenant }), {
        concurrency,
        discard: true
      }),
    /** clears the target partition: one tenant's (or the untenanted one), or every tenant's */
    clear: (target: Target) =>
      named(target.keyspace).clear(
        target.scope._tag === "all" ? { allTenants: true } : { tenant: target.scope.tenant }
      ),
    /** the value of every entry, none where it is gone */
    readAll: (entries: ReadonlyArray<Entry>, concurrency: "unbounded" | 1 = 1) =>
      Effect.forEach(
        entries,
        (e) =>
          Effect.map(
            named(e.keyspace).get(e.key, { tenant: e.tenant }),
            Option.map((c) => c.value)
          ),
        { concurrency }
      )
  }
}
