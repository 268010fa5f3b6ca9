/**
 * Tags on the Effect 4 line (the core's tag stamps, the keys and format the Effect 3 line uses; the interop test runs
 * both lines against one Redis): `set` and `getOrCompute` with `tags`, `invalidateTag` per tenant, no tombstone, input
 * checked before anything is written, and `invalidateTag` failing closed in both Redis modes; near hits of a tagged
 * entry end when another node invalidates its tag.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import {
  DistributedCache,
  ExplicitDegraded,
  Keyspace,
  localOnly,
  RedisClient,
  StrictDistributed
} from "effect-failclosed-effect4"
import { redisServer } from "./support/redis.js"

const Profiles = Keyspace.make({
  name: "profiles",
  key: Schema.Struct({ id: Schema.Number }),
  value: Schema.Struct({ name: Schema.String, org: Schema.Number }),
  timeToLive: "1 minute"
})

/** the field of an input error (undefined for any other error) */
const fieldOf = (error: { readonly _tag: string }) =>
  error._tag === "CacheValueInvalid" ? (error as unknown as { readonly field?: string }).field : undefined

const nameOf = (read: Option.Option<{ readonly value: { readonly name: string } }>) =>
  Option.getOrNull(Option.map(read, (c) => c.value.name))

describe("tags (Effect 4)", () => {
  it.effect("invalidateTag makes the tag's entries of one tenant misses; entries written afterwards are visible", () =>
    Effect.gen(function* () {
      yield* Profiles.set({ id: 1 }, { name: "Ada", org: 7 }, { tenant: "acme", tags: ["org:7", "plan:pro"] })
      yield* Profiles.set({ id: 2 }, { name: "Bob", org: 8 }, { tenant: "acme", tags: ["org:8"] })
      yield* Profiles.set({ id: 1 }, { name: "Other Ada", org: 7 }, { tenant: "other", tags: ["org:7"] })
      // getOrCompute: the computed value decides its tags
      const computed = yield* Profiles.getOrCompute({ id: 3 }, Effect.succeed({ name: "Cy", org: 7 }), {
        tenant: "acme",
        tags: (p) => [`org:${p.org}`]
      })
      assert.strictEqual(computed.value.name, "Cy")
      assert.strictEqual(nameOf(yield* Profiles.get({ id: 1 }, { tenant: "acme" })), "Ada")

      yield* Profiles.invalidateTag("org:7", { tenant: "acme" })
      assert.isNull(nameOf(yield* Profiles.get({ id: 1 }, { tenant: "acme" })))
      assert.isNull(nameOf(yield* Profiles.get({ id: 3 }, { tenant: "acme" })))
      assert.strictEqual(nameOf(yield* Profiles.get({ id: 2 }, { tenant: "acme" })), "Bob")
      assert.strictEqual(nameOf(yield* Profiles.get({ id: 1 }, { tenant: "other" })), "Other Ada")

      // no tombstone
      yield* Profiles.set({ id: 1 }, { name: "Ada again", org: 7 }, { tenant: "acme", tags: ["org:7"] })
      assert.strictEqual(nameOf(yield* Profiles.get({ id: 1 }, { tenant: "acme" })), "Ada again")
    }).pipe(Effect.provide(localOnly()))
  )

  it.effect("rejects bad tags and tenants with CacheValueInvalid before anything is written", () =>
    Effect.gen(function* () {
      const empty = yield* Effect.flip(Profiles.set({ id: 1 }, { name: "Ada", org: 7 }, { tags: [""] }))
      assert.strictEqual(fieldOf(empty), "tags")
      const tooMany = Array.from({ length: 65 }, (_, i) => `t${i}`)
      const many = yield* Effect.flip(Profiles.set({ id: 1 }, { name: "Ada", org: 7 }, { tags: tooMany }))
      assert.strictEqual(fieldOf(many), "tags")
      const computed = yield* Effect.flip(
        Profiles.getOrCompute({ id: 2 }, Effect.succeed({ name: "Bob", org: 8 }), { tags: () => [""] })
      )
      assert.strictEqual(fieldOf(computed), "tags")
      const tag = yield* Effect.flip(Profiles.invalidateTag(""))
      assert.strictEqual(fieldOf(tag), "tags")
      const tenant = yield* Effect.flip(Profiles.invalidateTag("org:7", { tenant: "" }))
      assert.strictEqual(fieldOf(tenant), "tenant")
      const stats = yield* DistributedCache.use((cache) => cache.stats)
      assert.strictEqual(stats.localEntries, 0)
    }).pipe(Effect.provide(localOnly()))
  )

  it.live("invalidateTag fails closed with CacheBackendUnavailable in StrictDistributed and ExplicitDegraded", () =>
    Effect.gen(function* () {
      const redis = yield* redisServer()
      const client = RedisClient.layer({ url: redis.url, commandTimeout: "200 millis" })
      const strict = yield* Layer.build(StrictDistributed.pipe(Layer.provide(client)))
      const degraded = yield* Layer.build(ExplicitDegraded.pipe(Layer.provide(client)))
      yield* Profiles.set({ id: 1 }, { name: "Ada", org: 7 }, { tags: ["org:7"] }).pipe(Effect.provide(strict))
      redis.pause()
      for (const cache of [strict, degraded]) {
        const error = yield* Effect.flip(Profiles.invalidateTag("org:7").pipe(Effect.provide(cache)))
        assert.strictEqual(error._tag, "CacheBackendUnavailable")
      }
      redis.resume()
    }).pipe(Effect.scoped)
  )

  it.live("a near hit of a tagged entry ends when another node invalidates its tag", () =>
    Effect.gen(function* () {
      const Near = Keyspace.make({
        name: "near-profiles",
        key: Schema.Struct({ id: Schema.Number }),
        value: Schema.Struct({ name: Schema.String }),
        timeToLive: "1 minute",
        nearCache: { capacity: 100 }
      })
      const redis = yield* redisServer()
      const node = () => StrictDistributed.pipe(Layer.provide(RedisClient.layer({ url: redis.url })))
      const a = yield* Layer.build(node())
      const b = yield* Layer.build(node())
      yield* Near.set({ id: 1 }, { name: "Ada" }, { tags: ["org:7"] }).pipe(Effect.provide(a))
      const readB = Near.get({ id: 1 }).pipe(
        Effect.map(Option.map((c) => ({ name: c.value.name, near: c.near }))),
        Effect.provide(b)
      )
      const deadline = Date.now() + 5_000
      let read = yield* readB
      while (!(Option.isSome(read) && read.value.near) && Date.now() < deadline) {
        yield* Effect.sleep("20 millis")
        read = yield* readB
      }
      assert.deepStrictEqual(read, Option.some({ name: "Ada", near: true }))
      yield* Near.invalidateTag("org:7").pipe(Effect.provide(a))
      // within the near cache's maxStaleness (1 second by default)
      yield* Effect.sleep("1100 millis")
      assert.isTrue(Option.isNone(yield* readB))
    }).pipe(Effect.scoped)
  )
})
