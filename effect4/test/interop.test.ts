/**
 * The two Effect lines on one Redis: real processes of each (an Effect 3 node on Node 20 with `effect-failclosed`, an
 * Effect 4 node on Node 24 with `effect-failclosed-effect4`, both on StrictDistributed) take turns on one
 * redis-server and see each other's state: one rate-limit budget per subject (all three algorithms), one replay
 * window, each other's cache entries (plain, and sealed with their freshness by a getOrCompute with a stale window)
 * and invalidations, each other's tags (an entry tagged on one line is a hit on the other, `invalidateTag` on either
 * makes it a miss on the other), tenants kept apart. A service-by-service migration from
 * Effect 3 to Effect 4 keeps its security state.
 */
import { execFile } from "node:child_process"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { redisServer } from "./support/redis.js"

const exec = promisify(execFile)
const effect4 = fileURLToPath(new URL("..", import.meta.url))
const root = join(effect4, "..")
const tsx = join(root, "node_modules", "tsx", "dist", "cli.mjs")

/** each line's node: the root's node@20 for Effect 3, this package's node@24 for Effect 4 */
const nodes = {
  effect3: {
    node: join(root, "node_modules", ".bin", "node"),
    cwd: root,
    program: join(root, "test", "interop", "effect3Node.ts")
  },
  effect4: {
    node: join(effect4, "node_modules", ".bin", "node"),
    cwd: effect4,
    program: join(effect4, "test", "interop", "effect4Node.ts")
  }
}

interface Output {
  readonly line: string
  readonly node: string
  readonly results: ReadonlyArray<unknown>
}

const runNode = (line: keyof typeof nodes, url: string, steps: ReadonlyArray<object>) =>
  Effect.promise(async (): Promise<Output> => {
    const { cwd, node, program } = nodes[line]
    const { stdout } = await exec(node, [tsx, "--conditions=source", program, JSON.stringify(steps)], {
      cwd,
      env: { ...process.env, REDIS_URL: url },
      timeout: 60_000
    })
    const out = JSON.parse(stdout.trim().split("\n").pop()!) as Output
    assert.strictEqual(out.line, line)
    return out
  })

const consume = (algorithm: string, subject: string) => ({ op: "consume", algorithm, subject })

describe("Effect 3 and Effect 4 nodes on one Redis", () => {
  it.live(
    "share one rate-limit budget, one replay window, and each other's entries and invalidations",
    () =>
      Effect.gen(function* () {
        const redis = yield* redisServer()
        const algorithms = ["fixed-window", "sliding-window", "token-bucket"]

        const first = yield* runNode("effect3", redis.url, [
          { op: "set", id: 1, name: "written by Effect 3", tenant: "acme" },
          { op: "sealed", id: 3, name: "sealed by Effect 3" },
          ...algorithms.flatMap((a) => [consume(a, "ada"), consume(a, "ada")]),
          { op: "claim", nonce: "n-1" },
          { op: "claim", nonce: "n-1", tenant: "acme" }
        ])
        assert.match(first.node, /^v20\./)
        assert.deepStrictEqual(first.results.slice(-2), ["claimed", "claimed"])
        assert.strictEqual(first.results[1], "sealed by Effect 3")

        const second = yield* runNode("effect4", redis.url, [
          { op: "get", id: 1, tenant: "acme" },
          { op: "get", id: 1, tenant: "other" },
          { op: "get", id: 1 },
          { op: "set", id: 2, name: "written by Effect 4" },
          { op: "get", id: 3 },
          { op: "sealed", id: 4, name: "sealed by Effect 4" },
          ...algorithms.flatMap((a) => [consume(a, "ada"), consume(a, "ada"), consume(a, "ada")]),
          { op: "claim", nonce: "n-1" },
          { op: "claim", nonce: "n-1", tenant: "acme" },
          { op: "claim", nonce: "n-2" },
          { op: "invalidate", id: 1, tenant: "acme" }
        ])
        assert.match(second.node, /^v24\./)
        const [entry, otherTenant, noTenant, , sealed3, , ...rest] = second.results
        // an entry sealed with its freshness by an Effect 3 getOrCompute: fresh for the Effect 4 node
        assert.strictEqual(sealed3, "sealed by Effect 3")
        // the Effect 3 node's entry, read by the Effect 4 node (and only in its tenant)
        assert.strictEqual(entry, "written by Effect 3")
        assert.isNull(otherTenant)
        assert.isNull(noTenant)
        // one budget of 4 per subject and algorithm: 2 spent on Effect 3, 2 left here, the fifth denied
        const decisions = rest.slice(0, 9)
        for (let i = 0; i < algorithms.length; i++) {
          assert.deepStrictEqual(
            decisions.slice(i * 3, i * 3 + 3),
            [
              { allowed: true, remaining: 1 },
              { allowed: true, remaining: 0 },
              { allowed: false, remaining: 0 }
            ],
            algorithms[i]
          )
        }
        // one replay window: the nonces Effect 3 claimed are replays here, in their own tenants
        assert.deepStrictEqual(rest.slice(9), ["replay", "replay", "claimed", true])

        const third = yield* runNode("effect3", redis.url, [
          { op: "get", id: 2 },
          { op: "get", id: 1, tenant: "acme" },
          { op: "get", id: 4 },
          { op: "claim", nonce: "n-2" },
          ...algorithms.map((a) => consume(a, "ada")),
          consume("fixed-window", "bob")
        ])
        assert.deepStrictEqual(third.results, [
          "written by Effect 4",
          // invalidated by the Effect 4 node
          null,
          "sealed by Effect 4",
          "replay",
          { allowed: false, remaining: 0 },
          { allowed: false, remaining: 0 },
          { allowed: false, remaining: 0 },
          { allowed: true, remaining: 3 }
        ])
      }).pipe(Effect.scoped),
    150_000
  )

  it.live(
    "share tags: an entry tagged on one line is a hit on the other, and invalidateTag on either reaches the other",
    () =>
      Effect.gen(function* () {
        const redis = yield* redisServer()
        const tenant = "acme"

        yield* runNode("effect3", redis.url, [
          { op: "set", id: 10, name: "tagged by Effect 3", tenant, tags: ["org:7"] },
          { op: "set", id: 11, name: "tagged by Effect 3", tenant, tags: ["org:8", "plan:pro"] },
          { op: "set", id: 15, name: "tagged by Effect 3 in another tenant", tenant: "other", tags: ["org:7"] }
        ])

        const second = yield* runNode("effect4", redis.url, [
          { op: "get", id: 10, tenant },
          { op: "get", id: 11, tenant },
          { op: "invalidateTag", tag: "org:8", tenant },
          { op: "get", id: 11, tenant },
          { op: "set", id: 12, name: "tagged by Effect 4", tenant, tags: ["org:9"] },
          { op: "tagged", id: 13, name: "computed by Effect 4", tenant, tags: ["org:9"] }
        ])
        // the Effect 3 node's tagged entries: hits here (their stamps checked), the invalidated tag's a miss
        assert.deepStrictEqual(second.results, [
          "tagged by Effect 3",
          "tagged by Effect 3",
          "ok",
          null,
          "ok",
          "computed by Effect 4"
        ])

        const third = yield* runNode("effect3", redis.url, [
          // invalidated by the Effect 4 node
          { op: "get", id: 11, tenant },
          // written tagged by the Effect 4 node (set, and getOrCompute with tags of the value): hits here …
          { op: "get", id: 12, tenant },
          { op: "get", id: 13, tenant },
          // … in their tenant's partition: the same tag in another tenant is another stamp
          { op: "invalidateTag", tag: "org:9", tenant: "other" },
          { op: "get", id: 12, tenant },
          // … and carrying their tag: its invalidation here makes them misses
          { op: "invalidateTag", tag: "org:9", tenant },
          { op: "get", id: 12, tenant },
          { op: "get", id: 13, tenant },
          { op: "get", id: 10, tenant },
          { op: "invalidateTag", tag: "org:7", tenant }
        ])
        assert.deepStrictEqual(third.results, [
          null,
          "tagged by Effect 4",
          "computed by Effect 4",
          "ok",
          "tagged by Effect 4",
          "ok",
          null,
          null,
          "tagged by Effect 3",
          "ok"
        ])

        const fourth = yield* runNode("effect4", redis.url, [
          // a hit here before (second run), invalidated by the Effect 3 node since
          { op: "get", id: 10, tenant },
          // the same tag in another tenant: untouched
          { op: "get", id: 15, tenant: "other" },
          // no tombstone: written again with the tag after its invalidation
          { op: "set", id: 12, name: "tagged again by Effect 4", tenant, tags: ["org:9"] }
        ])
        assert.deepStrictEqual(fourth.results, [null, "tagged by Effect 3 in another tenant", "ok"])
        const fifth = yield* runNode("effect3", redis.url, [
          { op: "get", id: 12, tenant },
          { op: "invalidateTag", tag: "org:9", tenant },
          { op: "get", id: 12, tenant }
        ])
        // visible again, and carrying its tag
        assert.deepStrictEqual(fifth.results, ["tagged again by Effect 4", "ok", null])
      }).pipe(Effect.scoped),
    150_000
  )
})
