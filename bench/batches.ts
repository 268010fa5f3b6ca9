/**
 * Batches and tags (issue 21) against Redis, StrictDistributed, sequential:
 *
 * - `getMany` of 100 keys against 100 sequential `get`s of the same keys, per key (target ≥ 20× the keys per second,
 *   Redis CPU per key ≤ 0.5× a GET's); `setMany` of 100 against 100 sequential `set`s;
 * - a Redis read of a tagged entry (2 tags) against the same read of an untagged one (≤ 1.2× its cost: ratio ≥
 *   0.83); a near hit of a tagged entry against an untagged near hit (≤ 1.1×: ratio ≥ 0.91);
 * - `invalidateTag` of a tag carried by 100,000 entries against `invalidate` of one key (the time and Redis CPU of
 *   one removal; it does not grow with the entries, which is what the row shows).
 */
import * as Effect from "effect/Effect"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Option from "effect/Option"
import { effectWorkers, hitId, KEYS, libraryLayer, users, usersKeyspace } from "./fixtures.js"
import type { Case, Runner, ServerCpu } from "./harness.js"

const BATCH = 100
const TAGGED_ENTRIES = Number(process.env["BENCH_TAGGED"] ?? 100_000)
const TAGS = ["org:7", "plan:pro"]

const keyspace = usersKeyspace

const Plain = keyspace("bench-batch")
const Tagged = keyspace("bench-tagged")
const NearPlain = keyspace("bench-near-untagged", { capacity: 10_000 })
const NearTagged = keyspace("bench-near-tagged", { capacity: 10_000 })
const Big = keyspace("bench-tag-100k")

const valueOf = (id: number) => users[id % KEYS]!
/** the keys of batch `b` (batches walk over the hit set) */
const batchKeys = Array.from({ length: KEYS / BATCH }, (_, b) =>
  Array.from({ length: BATCH }, (_, j) => ({ id: b * BATCH + j }))
)
const batchEntries = batchKeys.map((keys) => keys.map((k) => [k, valueOf(k.id)] as const))

export const batchCases = async (
  url: string,
  serverCpu: ServerCpu,
  log: (line: string) => void
): Promise<{ cases: ReadonlyArray<Case>; prepare: () => Promise<void>; close: () => Promise<void> }> => {
  const rt = ManagedRuntime.make(libraryLayer(url))
  type Op = (i: number) => Effect.Effect<unknown, unknown, never>
  const lib = (f: (i: number) => Effect.Effect<unknown, unknown, unknown>): Runner =>
    effectWorkers(1, f as Op, (e) => rt.runPromise(e))
  /** a runner of `ops` keys, `BATCH` per call: its ops per second are keys per second */
  const perKey =
    (f: (batch: number) => Effect.Effect<unknown, unknown, unknown>): Runner =>
    (ops) =>
      lib(f)(Math.max(1, Math.round(ops / BATCH)))
  const fill = (f: (id: number) => Effect.Effect<unknown, unknown, unknown>, n: number) =>
    rt.runPromise(
      Effect.forEach(
        Array.from({ length: n }, (_, id) => id),
        f as Op,
        { concurrency: 64, discard: true }
      )
    )
  try {
    await fill((id) => Plain.set({ id }, valueOf(id)), KEYS)
    await fill((id) => Tagged.set({ id }, valueOf(id), { tags: TAGS }), KEYS)
    await fill((id) => NearPlain.set({ id }, valueOf(id)), KEYS)
    await fill((id) => NearTagged.set({ id }, valueOf(id), { tags: TAGS }), KEYS)
    log(`bench: writing ${TAGGED_ENTRIES.toLocaleString("en-US")} entries tagged "org:7"`)
    await fill((id) => Big.set({ id }, valueOf(id), { tags: ["org:7"] }), TAGGED_ENTRIES)
    // one removal of a tag that 100,000 live entries carry: its time and Redis CPU, once
    {
      const before = await serverCpu()
      const start = performance.now()
      await rt.runPromise(Big.invalidateTag("org:7"))
      const ms = performance.now() - start
      const cpuMs = ((await serverCpu()) - before) * 1000
      const gone = await rt.runPromise(Big.get({ id: 1 }))
      log(
        `bench: invalidateTag over ${TAGGED_ENTRIES.toLocaleString("en-US")} tagged entries: ${ms.toFixed(2)} ms, ` +
          `Redis CPU ${cpuMs.toFixed(2)} ms (one UNLINK); an entry of the tag reads as ${Option.isNone(gone) ? "a miss" : "**a hit**"}`
      )
    }

    const group = "Batches and tags (StrictDistributed), sequential"
    let stamp = 0
    const cases: Array<Case> = [
      {
        group,
        name: `getMany of ${BATCH} keys (per key)`,
        library: {
          label: `Keyspace.getMany, ${BATCH} keys`,
          run: perKey((b) => Plain.getMany(batchKeys[b % batchKeys.length]!))
        },
        baselines: [
          {
            label: `${BATCH} sequential Keyspace.get`,
            run: lib((i) => Plain.get({ id: hitId(i) })),
            target: { ratio: 20, redisCpu: 0.5 }
          }
        ],
        serverCpu
      },
      {
        group,
        name: `setMany of ${BATCH} entries (per entry)`,
        library: {
          label: `Keyspace.setMany, ${BATCH} entries`,
          run: perKey((b) => Plain.setMany(batchEntries[b % batchEntries.length]!))
        },
        baselines: [
          { label: `${BATCH} sequential Keyspace.set`, run: lib((i) => Plain.set({ id: hitId(i) }, valueOf(i))) }
        ],
        serverCpu
      },
      {
        group,
        name: "get (Redis hit), tagged entry (2 tags)",
        library: { label: "tagged", run: lib((i) => Tagged.get({ id: hitId(i) })) },
        baselines: [{ label: "untagged", run: lib((i) => Plain.get({ id: hitId(i) })), target: { ratio: 0.83 } }],
        serverCpu
      },
      {
        group,
        name: "get (near hit), tagged entry (2 tags)",
        library: { label: "tagged", run: lib((i) => NearTagged.get({ id: hitId(i) })) },
        baselines: [{ label: "untagged", run: lib((i) => NearPlain.get({ id: hitId(i) })), target: { ratio: 0.91 } }],
        serverCpu
      },
      {
        group,
        name: `invalidateTag (a tag of ${TAGGED_ENTRIES.toLocaleString("en-US")} entries)`,
        library: { label: "invalidateTag", run: lib(() => Big.invalidateTag("org:7")) },
        baselines: [
          { label: "invalidate of one key", run: lib(() => Plain.invalidate({ id: KEYS + (stamp++ % KEYS) })) }
        ],
        serverCpu
      }
    ]
    const prepare = async () => {
      // the near hit sets, read until they are near (reads before the tracking connection is ready are not kept)
      for (const ks of [NearPlain, NearTagged]) {
        for (let attempt = 0; ; attempt++) {
          await lib((i) => ks.get({ id: hitId(i) }))(KEYS)
          const probe = await rt.runPromise(ks.get({ id: KEYS - 1 }))
          if (Option.isSome(probe) && probe.value.near) break
          if (attempt === 50) throw new Error(`bench: ${ks.name} does not serve near hits`)
          await new Promise((resolve) => setTimeout(resolve, 20))
        }
      }
    }
    return { cases, prepare, close: () => rt.dispose() }
  } catch (error) {
    await rt.dispose()
    throw error
  }
}
