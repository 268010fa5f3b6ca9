/**
 * The near cache on the Effect 4 line: the core's near cache and tracking connections behind `Keyspace.make({ …,
 * nearCache })`. A near hit is marked `near: true`; a write by another node — of this line, or an Effect 3 node in a
 * process of its own — reaches it as an invalidation, so no node keeps serving the old value.
 */
import { execFile } from "node:child_process"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { Keyspace, RedisClient, StrictDistributed } from "effect-failclosed-effect4"
import { redisServer } from "./support/redis.js"

const exec = promisify(execFile)
const root = join(fileURLToPath(new URL("..", import.meta.url)), "..")

const Profiles = Keyspace.make({
  name: "profiles",
  key: Schema.Struct({ id: Schema.Number }),
  value: Schema.Struct({ name: Schema.String }),
  timeToLive: "1 minute",
  nearCache: { capacity: 100 }
})

/** reads until `done` holds (the near cache needs its first proof; an invalidation travels), at most 5 s */
const readUntil = <A>(read: Effect.Effect<A, unknown>, done: (a: A) => boolean) =>
  Effect.gen(function* () {
    const deadline = Date.now() + 5_000
    let last = yield* read
    while (!done(last) && Date.now() < deadline) {
      yield* Effect.sleep("20 millis")
      last = yield* read
    }
    return last
  })

describe("near cache (Effect 4)", () => {
  it.live(
    "serves near hits, and drops them on a write by another node of either Effect line",
    () =>
      Effect.gen(function* () {
        const redis = yield* redisServer()
        const node = () => StrictDistributed.pipe(Layer.provide(RedisClient.layer({ url: redis.url })))
        const a = yield* Layer.build(node())
        const b = yield* Layer.build(node())
        const readB = Profiles.get({ id: 1 }).pipe(
          Effect.map(Option.map((c) => ({ name: c.value.name, near: c.near }))),
          Effect.provide(b)
        )
        yield* Profiles.set({ id: 1 }, { name: "v1" }).pipe(Effect.provide(a))
        const near = yield* readUntil(readB, (r) => Option.isSome(r) && r.value.near)
        assert.deepStrictEqual(near, Option.some({ name: "v1", near: true }))

        // a write by another Effect 4 node
        yield* Profiles.set({ id: 1 }, { name: "v2" }).pipe(Effect.provide(a))
        const second = yield* readUntil(readB, (r) => Option.isSome(r) && r.value.name === "v2")
        assert.strictEqual(Option.getOrThrow(second).name, "v2")

        // a write by an Effect 3 node (Node 20, its own process): the same key, the same invalidation
        yield* readUntil(readB, (r) => Option.isSome(r) && r.value.near)
        yield* Effect.promise(() =>
          exec(
            join(root, "node_modules", ".bin", "node"),
            [
              join(root, "node_modules", "tsx", "dist", "cli.mjs"),
              "--conditions=source",
              join(root, "test", "interop", "effect3Node.ts"),
              JSON.stringify([{ op: "set", id: 1, name: "written by Effect 3" }])
            ],
            { cwd: root, env: { ...process.env, REDIS_URL: redis.url }, timeout: 60_000 }
          )
        )
        const third = yield* readUntil(readB, (r) => Option.isSome(r) && r.value.name === "written by Effect 3")
        assert.strictEqual(Option.getOrThrow(third).name, "written by Effect 3")
        // and it is served near again once refilled
        const refilled = yield* readUntil(readB, (r) => Option.isSome(r) && r.value.near)
        assert.deepStrictEqual(refilled, Option.some({ name: "written by Effect 3", near: true }))
      }).pipe(Effect.scoped),
    90_000
  )
})
