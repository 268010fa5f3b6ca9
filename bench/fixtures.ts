/**
 * What every benchmark reads and writes: a ~200-byte JSON object under 1,000 distinct keys,
 * the keyspace that describes it, the raw ioredis client options the library uses, and the
 * loops that run Effects sequentially or with many in flight.
 */
import { readFileSync } from "node:fs"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { Redis } from "ioredis"
import { Keyspace } from "../src/index.js"
import { failFastOptions } from "../src/RedisClient.js"
import type { Runner } from "./harness.js"

/** distinct keys of the hit, miss and invalidate sets */
export const KEYS = 1_000

/** the keyspace's and the raw side's time to live */
export const TTL_MILLIS = 10 * 60 * 1000

export const User = Schema.Struct({
  id: Schema.Number,
  name: Schema.String,
  email: Schema.String,
  roles: Schema.Array(Schema.String),
  active: Schema.Boolean,
  score: Schema.Number,
  createdAt: Schema.String,
  tags: Schema.Array(Schema.String),
  org: Schema.String
})
export type User = typeof User.Type

export const userOf = (id: number): User => ({
  id,
  name: "Ada Lovelace",
  email: "ada.lovelace@example.com",
  roles: ["admin", "editor"],
  active: true,
  score: 98.5,
  createdAt: "2024-05-01T12:34:56.789Z",
  tags: ["alpha", "beta"],
  org: "analytical-eng"
})

/** one value per key, built once (an application passes values it already has) */
export const users: ReadonlyArray<User> = Array.from({ length: 3 * KEYS }, (_, i) => userOf(i))

export const PAYLOAD_BYTES = Buffer.byteLength(JSON.stringify(userOf(KEYS - 1)), "utf8")

export const Users = Keyspace.make({
  name: "bench-users",
  key: Schema.Struct({ id: Schema.Number }),
  value: User,
  timeToLive: Duration.millis(TTL_MILLIS)
})

/** ids [0, KEYS) are stored; [KEYS, 2 KEYS) never are; [2 KEYS, 3 KEYS) are invalidated */
export const hitId = (i: number) => i % KEYS
export const missId = (i: number) => KEYS + (i % KEYS)
export const goneId = (i: number) => 2 * KEYS + (i % KEYS)

/** the raw side's keys, built per call as an application would */
export const rawKey = (id: number) => "raw:user:" + id

/**
 * The command timeout of both sides. The library's default (300 millis) would let a busy
 * shared machine fail a benchmark run; the cost of the per-command timer is the same whatever
 * its duration.
 */
export const COMMAND_TIMEOUT = Duration.seconds(5)

/**
 * The options `RedisClient.layer` gives ioredis (with COMMAND_TIMEOUT and auto-pipelining as asked). One difference:
 * the library's client gets ioredis' per-command timer 2 seconds later than COMMAND_TIMEOUT, as a backstop behind
 * the store's own deadline; here it is COMMAND_TIMEOUT itself, as an application would set it. A timer costs the
 * same whatever its duration.
 */
export const rawClient = (url: string, enableAutoPipelining: boolean): Redis => {
  const client = new Redis(url, {
    ...failFastOptions({
      commandTimeout: COMMAND_TIMEOUT,
      connectTimeout: Duration.seconds(1),
      maxReconnectDelay: Duration.millis(500),
      enableAutoPipelining
    })
  })
  client.on("error", () => {})
  return client
}

export const waitReady = (client: Redis): Promise<void> =>
  client.status === "ready" ? Promise.resolve() : new Promise((resolve) => client.once("ready", () => resolve()))

/**
 * `ops` runs of `body` with `inFlight` fibers, each running its next operation when the
 * previous one has completed (a closed loop, like `promiseWorkers`).
 */
export const effectWorkers =
  <E, R>(
    inFlight: number,
    body: (i: number) => Effect.Effect<unknown, E, R>,
    run: (effect: Effect.Effect<void, E, R>) => Promise<void>
  ): Runner =>
  (ops) =>
    run(
      Effect.suspend(() => {
        let next = 0
        const worker = Effect.whileLoop({
          while: () => next < ops,
          body: () => body(next++),
          step: () => {}
        })
        if (inFlight === 1) return worker
        return Effect.forEach(
          Array.from({ length: inFlight }, () => worker),
          (w) => w,
          { concurrency: "unbounded", discard: true }
        )
      })
    )

/** the repository's root, whether this file runs as bench/fixtures.ts or compiled to .bench/bench/fixtures.js */
export const repoRoot = new URL(import.meta.url.includes("/.bench/") ? "../../" : "../", import.meta.url)

const packageVersion = (name: string): string => {
  try {
    const url = new URL(`node_modules/${name}/package.json`, repoRoot)
    return (JSON.parse(readFileSync(url, "utf8")) as { version: string }).version
  } catch {
    return "?"
  }
}

export const versions = () => ({
  "effect-failclosed": (JSON.parse(readFileSync(new URL("package.json", repoRoot), "utf8")) as { version: string })
    .version,
  effect: packageVersion("effect"),
  ioredis: packageVersion("ioredis"),
  "lru-cache": packageVersion("lru-cache"),
  node: process.version
})
