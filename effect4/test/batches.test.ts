/**
 * Batches on the Effect 4 line: `getMany` / `setMany` on the core's batch module (one MGET, one round trip, per Redis
 * node), answers in the order of the keys, tagged entries checked against their stamps, bad input a typed error
 * before anything is written, and an unavailable Redis failing closed in StrictDistributed.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { DistributedCache, Keyspace, localOnly, RedisClient, StrictDistributed } from "effect-failclosed-effect4"
import { redisServer } from "./support/redis.js"

const Profiles = Keyspace.make({
  name: "profiles",
  key: Schema.Struct({ id: Schema.Number }),
  value: Schema.Struct({ name: Schema.String }),
  timeToLive: "1 minute"
})

const names = (reads: ReadonlyArray<Option.Option<{ readonly value: { readonly name: string } }>>) =>
  reads.map((read) => Option.getOrNull(Option.map(read, (c) => c.value.name)))

describe("batches (Effect 4)", () => {
  it.effect("setMany writes every entry; getMany answers in the order of the keys, per tenant", () =>
    Effect.gen(function* () {
      yield* Profiles.setMany(
        [
          [{ id: 1 }, { name: "Ada" }],
          [{ id: 3 }, { name: "Cy" }]
        ],
        { tenant: "acme" }
      )
      const reads = yield* Profiles.getMany([{ id: 3 }, { id: 2 }, { id: 1 }], { tenant: "acme" })
      assert.deepStrictEqual(names(reads), ["Cy", null, "Ada"])
      assert.deepStrictEqual(names(yield* Profiles.getMany([{ id: 1 }], { tenant: "other" })), [null])
      assert.deepStrictEqual(yield* Profiles.getMany([]), [])
    }).pipe(Effect.provide(localOnly()))
  )

  it.effect("one bad element fails the whole batch with CacheValueInvalid, and nothing is written", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        Profiles.setMany([
          [{ id: 1 }, { name: "Ada" }],
          [{ id: 2 }, { name: 1 as unknown as string }]
        ])
      )
      assert.strictEqual(error._tag, "CacheValueInvalid")
      assert.include(error._tag === "CacheValueInvalid" ? error.reason : "", "entries[1]")
      const tenant = yield* Effect.flip(Profiles.getMany([{ id: 1 }], { tenant: "" }))
      assert.strictEqual(tenant._tag, "CacheValueInvalid")
      const stats = yield* DistributedCache.use((cache) => cache.stats)
      assert.strictEqual(stats.localEntries, 0)
    }).pipe(Effect.provide(localOnly()))
  )

  it.live(
    "on Redis: one MGET for a batch, tagged entries checked, and CacheBackendUnavailable when Redis is paused",
    () =>
      Effect.gen(function* () {
        const redis = yield* redisServer()
        const cache = yield* Layer.build(
          StrictDistributed.pipe(Layer.provide(RedisClient.layer({ url: redis.url, commandTimeout: "200 millis" })))
        )
        const run = <A, E>(effect: Effect.Effect<A, E, DistributedCache>) => Effect.provide(effect, cache)
        yield* run(
          Profiles.setMany([
            [{ id: 1 }, { name: "Ada" }],
            [{ id: 2 }, { name: "Bob" }]
          ])
        )
        yield* run(Profiles.set({ id: 3 }, { name: "Cy" }, { tags: ["org:7"] }))
        yield* run(Profiles.invalidateTag("org:7"))
        yield* Effect.promise(() => redis.command("CONFIG", "RESETSTAT"))
        const reads = yield* run(Profiles.getMany([{ id: 1 }, { id: 2 }, { id: 3 }, { id: 4 }]))
        assert.deepStrictEqual(names(reads), ["Ada", "Bob", null, null])
        const stats = yield* Effect.promise(() => redis.command("INFO", "commandstats"))
        // the entries in one MGET, the stamp of the tagged one in another; never a GET per key
        assert.match(String(stats), /cmdstat_mget:calls=2,/)
        assert.notMatch(String(stats), /cmdstat_get:/)
        redis.pause()
        const error = yield* Effect.flip(run(Profiles.getMany([{ id: 1 }])))
        assert.strictEqual(error._tag, "CacheBackendUnavailable")
        redis.resume()
      }).pipe(Effect.scoped)
  )
})
