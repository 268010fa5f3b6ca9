/**
 * Properties on one real redis-server (one connection per mode, many cases per connection): through
 * StrictDistributed, distinct (keyspace, tenant, key) triples never share a Redis key and `clear` of a tenant or a
 * keyspace deletes nothing outside it, whatever the strings hold (SCAN MATCH sees glob characters, backslashes,
 * separators, controls, malformed UTF-16); and values round-trip exactly through every mode.
 *
 * Seeded: FC_SEED reproduces a run (printed below), FC_RUNS raises the number of runs (never below 1,000).
 */
import { Duration, Effect, Layer, ManagedRuntime, Option, Schema } from "effect"
import * as fc from "fast-check"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import {
  type DistributedCache,
  explicitDegraded,
  Keyspace,
  localOnly,
  RedisClient,
  strictDistributed
} from "effect-failclosed"
import { canonicalJson, hashCanonical, keyspaceHead, tenantSegment } from "@effect-failclosed/core"
import { type Entry, inTarget, partitionScenario, scenarioKeyspaces, seeded } from "../support/property.js"
import { type RedisServer, startRedis } from "../support/RedisServer.js"

const params = seeded("redis")

// --- one server, one runtime per mode ----------------------------------------------------------------------------------

let redis: RedisServer
let dead: RedisServer
type Runtime = ManagedRuntime.ManagedRuntime<DistributedCache | RedisClient, unknown>
let strict: Runtime
let degraded: Runtime
let local: ManagedRuntime.ManagedRuntime<DistributedCache, never>
/** ExplicitDegraded whose Redis is down: every result comes from its node-local fallback */
let fallback: Runtime

const clientLayer = (url: string) =>
  RedisClient.layer({ url, commandTimeout: Duration.seconds(2), startupTimeout: Duration.millis(300) })

beforeAll(async () => {
  redis = await startRedis()
  dead = await startRedis()
  await dead.kill()
  strict = ManagedRuntime.make(Layer.provideMerge(strictDistributed(), clientLayer(redis.url)))
  degraded = ManagedRuntime.make(Layer.provideMerge(explicitDegraded({ cooldown: "1 hour" }), clientLayer(redis.url)))
  local = ManagedRuntime.make(localOnly())
  fallback = ManagedRuntime.make(
    Layer.provideMerge(explicitDegraded({ cooldown: "1 hour", localCapacity: 100_000 }), clientLayer(dead.url))
  )
  await Promise.all([strict.runtime(), degraded.runtime(), local.runtime(), fallback.runtime()])
})

afterAll(async () => {
  await Promise.all([strict?.dispose(), degraded?.dispose(), local?.dispose(), fallback?.dispose()])
  await Promise.all([redis?.stop(), dead?.stop()])
})

const raw = () => strict.runPromise(Effect.map(RedisClient, (r) => r.client))

// --- arbitraries -----------------------------------------------------------------------------------------------------

const hostileChar = fc.oneof(
  fc.constantFrom("*", "?", "[", "]", "\\", "^", ":", "-", "{", "}", "t", "a", "\n", "\r", "\0", "\u2028", "é", "😀"),
  fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c)),
  fc.string({ unit: "binary", minLength: 1, maxLength: 1 })
)

/** non-empty, at most `maxLength` UTF-16 code units; sometimes very long */
const hostileString = (maxLength: number) =>
  fc
    .oneof(
      { weight: 8, arbitrary: fc.string({ unit: hostileChar, minLength: 1, maxLength: 6 }) },
      { weight: 1, arbitrary: fc.string({ unit: hostileChar, minLength: maxLength - 8, maxLength }) }
    )
    .map((s) => s.slice(0, maxLength))

const MAX_TENANT = 2_000

const keyspaces = scenarioKeyspaces(MAX_TENANT)

const scenario = partitionScenario({
  hostileString,
  maxTenantLength: MAX_TENANT,
  maxKeyLength: 16,
  keyDepth: 1,
  maxEntries: 10,
  extra: ({ names }) => ({
    /** keys that are not the library's, written next to its keys: no clear may touch them */
    foreign: fc.uniqueArray(
      fc.oneof(
        fc.constantFrom("fc:*", "fc:\\*", "fc:[a-z]*", "fc:-:*", "fc:k:*", "fc:k:-:*", "fc:{g:x", "fc", "*"),
        fc.tuple(fc.constantFrom(...names), hostileString(8)).map(([name, s]) => `fc:${name}:${s}`),
        // what a naive pattern without the closing separator would also match
        fc.constantFrom(...names).map((name) => keyspaceHead("fc", name).slice(0, -1) + "*")
      ),
      { maxLength: 3 }
    )
  })
})

const setAll = (entries: ReadonlyArray<Entry>) => keyspaces.setAll(entries, "unbounded")
const readAll = (entries: ReadonlyArray<Entry>) => keyspaces.readAll(entries, "unbounded")

describe("StrictDistributed on a real redis-server", () => {
  it("writes each (keyspace, tenant, key) triple under its own Redis key, the one the key layout names", async () => {
    const client = await raw()
    await fc.assert(
      fc.asyncProperty(scenario, async ({ entries }) => {
        await client.flushdb()
        const values = await strict.runPromise(Effect.zipRight(setAll(entries), readAll(entries)))
        expect(values).toEqual(entries.map((_, i) => Option.some(i)))
        const expectedKeys = entries.map(
          (e) => keyspaceHead("fc", e.keyspace) + tenantSegment(e.tenant) + ":" + hashCanonical(canonicalJson(e.key))
        )
        expect((await client.keys("*")).sort()).toEqual([...expectedKeys].sort())
      }),
      params
    )
  })

  it("clear of a tenant, the untenanted partition or a whole keyspace deletes exactly that partition", async () => {
    const client = await raw()
    await fc.assert(
      fc.asyncProperty(scenario, async ({ entries, foreign, target }) => {
        // one round trip each for the setup and the checks around the library's calls: 1,000 runs of sequential round
        // trips are what a busy machine makes slow
        const setup = client.pipeline().flushdb()
        if (foreign.length > 0) setup.mset(...foreign.flatMap((k) => [k, "foreign"]))
        await setup.exec()
        const [deleted, values] = await strict.runPromise(
          Effect.gen(function* () {
            yield* setAll(entries)
            const deleted = yield* keyspaces.clear(target)
            return [deleted, yield* readAll(entries)] as const
          })
        )
        const inside = entries.filter((e) => inTarget(e, target)).length
        expect(values).toEqual(entries.map((e, i) => (inTarget(e, target) ? Option.none() : Option.some(i))))
        expect(deleted).toBe(inside)
        const check = client.pipeline().dbsize()
        if (foreign.length > 0) check.mget(...foreign)
        const replies = ((await check.exec()) ?? []).map(([, reply]) => reply)
        expect(replies[0]).toBe(entries.length - inside + foreign.length)
        if (foreign.length > 0) expect(replies[1]).toEqual(foreign.map(() => "foreign"))
      }),
      params
    )
  })
})

// --- values round-trip through every mode ------------------------------------------------------------------------------

const Value = Schema.Struct({
  text: Schema.String,
  number: Schema.Number,
  int: Schema.Int,
  when: Schema.Date,
  big: Schema.BigInt,
  maybe: Schema.Option(Schema.String),
  tags: Schema.Array(Schema.String),
  choice: Schema.Union(Schema.Literal("a", "b"), Schema.Struct({ nested: Schema.NullOr(Schema.Boolean) })),
  json: Schema.Unknown
})
type Value = typeof Value.Type

const Values = Keyspace.make({
  name: "values",
  key: Schema.String,
  value: Value,
  timeToLive: "1 hour",
  maxValueBytes: 16 * 1024 * 1024,
  maxTenantLength: MAX_TENANT
})

const anyText = fc.oneof(
  { weight: 10, arbitrary: fc.string({ unit: hostileChar, maxLength: 30 }) },
  { weight: 10, arbitrary: fc.string({ unit: "binary", maxLength: 30 }) },
  { weight: 1, arbitrary: fc.string({ unit: hostileChar, minLength: 2_000, maxLength: 4_000 }) }
)

const valueArb: fc.Arbitrary<Value> = fc.record({
  text: anyText,
  number: fc.double({ noNaN: true, noDefaultInfinity: true }),
  int: fc.integer(),
  when: fc.date({ noInvalidDate: true }),
  big: fc.bigInt(),
  maybe: fc.option(anyText, { nil: undefined }).map(Option.fromNullable),
  tags: fc.array(anyText, { maxLength: 4 }),
  choice: fc.oneof(
    fc.constantFrom("a" as const, "b" as const),
    fc.option(fc.boolean(), { nil: null }).map((nested) => ({ nested }))
  ),
  json: fc.jsonValue({ maxDepth: 3 })
})

/** -0 comes back as 0: JSON has no negative zero (documented); everything else comes back as it was */
const normalised = (value: Value): Value => ({
  ...value,
  number: value.number === 0 ? 0 : value.number,
  json: JSON.parse(JSON.stringify(value.json))
})

const modes: ReadonlyArray<readonly [string, () => ManagedRuntime.ManagedRuntime<DistributedCache, unknown>, string]> =
  [
    ["LocalOnly", () => local, "local"],
    ["StrictDistributed", () => strict, "redis"],
    ["ExplicitDegraded (Redis up)", () => degraded, "redis"],
    ["ExplicitDegraded (Redis down, node-local fallback)", () => fallback, "local_degraded"]
  ]

describe("values round-trip exactly", () => {
  for (const [mode, runtime, backend] of modes) {
    it(`through ${mode}`, async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.string({ maxLength: 20 }),
          fc.option(hostileString(MAX_TENANT), { nil: undefined }),
          valueArb,
          async (key, tenant, value) => {
            const [stored, computed, again] = await runtime().runPromise(
              Effect.gen(function* () {
                yield* Values.set(key, value, { tenant })
                const stored = yield* Values.get(key, { tenant })
                yield* Values.invalidate(key, { tenant }).pipe(Effect.orElseSucceed(() => false))
                const computed = yield* Values.getOrCompute(key, Effect.succeed(value), { tenant })
                const again = yield* Values.get(key, { tenant })
                return [stored, computed, again] as const
              })
            )
            const expected = normalised(value)
            expect(Option.getOrThrow(stored)).toEqual({
              value: expected,
              backend,
              degraded: backend === "local_degraded",
              near: false,
              stale: false
            })
            expect(normalised(computed.value)).toEqual(expected)
            expect(Option.getOrThrow(again).value).toEqual(expected)
          }
        ),
        params
      )
    })
  }
})
