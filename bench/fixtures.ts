/**
 * What every benchmark reads and writes: a ~200-byte JSON object under 1,000 distinct keys,
 * the keyspace that describes it, the library's Layer and the raw ioredis clients it is compared
 * with, the probe of redis-server's CPU, and the loops that run Effects sequentially or with many
 * in flight.
 */
import { readFileSync } from "node:fs"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { Redis } from "ioredis"
import * as Layer from "effect/Layer"
import { Keyspace, RedisClient, strictDistributed } from "../src/index.js"
import type { Runner, ServerCpu } from "./harness.js"

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

/** a keyspace of the bench's users (`{ id }` keys, the bench's time to live), with or without a near cache */
export const usersKeyspace = (
  name: string,
  nearCache?: { readonly capacity: number; readonly maxStaleness?: Duration.DurationInput }
) =>
  Keyspace.make({
    name,
    key: Schema.Struct({ id: Schema.Number }),
    value: User,
    timeToLive: Duration.millis(TTL_MILLIS),
    nearCache
  })

export const Users = usersKeyspace("bench-users")

/** ids [0, KEYS) are stored; [KEYS, 2 KEYS) never are; [2 KEYS, 3 KEYS) are invalidated */
export const hitId = (i: number) => i % KEYS
export const missId = (i: number) => KEYS + (i % KEYS)
export const goneId = (i: number) => 2 * KEYS + (i % KEYS)

/** the raw side's keys, built per call as an application would */
export const rawKey = (id: number) => "raw:user:" + id

/**
 * The library's command timeout here. Its default (300 millis) would let a busy shared machine
 * fail a benchmark run; the cost of the per-command timer is the same whatever its duration.
 * Everything else of the library's client is `RedisClient.layer`'s default (auto-pipelining and
 * command batching on).
 */
export const COMMAND_TIMEOUT = Duration.seconds(5)

/** StrictDistributed over `RedisClient.layer` with its defaults, but COMMAND_TIMEOUT */
export const libraryLayer = (url: string) =>
  strictDistributed().pipe(Layer.provide(RedisClient.layer({ url, commandTimeout: COMMAND_TIMEOUT })))

/**
 * How a raw baseline's ioredis client is built:
 *
 * - `default`: `new Redis(url)`, what a user gets without options (auto-pipelining off), the
 *   baseline of every sequential row;
 * - `auto-pipelined`: `new Redis(url, { enableAutoPipelining: true })`, ioredis at its best with
 *   many calls in flight, the baseline of every in-flight row.
 *
 * Only an `error` listener is added (so a failing run does not print each reconnection).
 */
export type RawKind = "default" | "auto-pipelined"

export const rawClient = (url: string, kind: RawKind): Redis => {
  const client = kind === "default" ? new Redis(url) : new Redis(url, { enableAutoPipelining: true })
  client.on("error", () => {})
  return client
}

/** the raw client a row of `inFlight` calls is compared with */
export const rawKindFor = (inFlight: number): RawKind => (inFlight === 1 ? "default" : "auto-pipelined")

/** "sequential" or "256 in flight" */
export const concurrency = (inFlight: number): string => (inFlight === 1 ? "sequential" : `${inFlight} in flight`)

export const waitReady = (client: Redis): Promise<void> =>
  client.status === "ready" ? Promise.resolve() : new Promise((resolve) => client.once("ready", () => resolve()))

/**
 * redis-server's CPU (`INFO cpu`: used_cpu_user + used_cpu_sys, in seconds) read through a client
 * of its own, so that no measured side's connection carries the probe
 */
export const serverCpuProbe = async (
  url: string
): Promise<{ readonly read: ServerCpu; readonly close: () => void }> => {
  const client = rawClient(url, "default")
  await waitReady(client)
  const field = (info: string, name: string) => Number(new RegExp(`^${name}:([0-9.]+)`, "m").exec(info)?.[1] ?? NaN)
  return {
    read: async () => {
      const info = await client.info("cpu")
      const seconds = field(info, "used_cpu_user") + field(info, "used_cpu_sys")
      if (!Number.isFinite(seconds)) throw new Error("bench: INFO cpu has no used_cpu_user/used_cpu_sys")
      return seconds
    },
    close: () => client.disconnect()
  }
}

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

/**
 * The Effect floor (docs/performance.md, "Method"): the same ioredis call(s) as the raw side, each wrapped in a bare
 * `Effect.async`, run by the same fiber loop as the library's side ({@link effectWorkers}) on the default runtime. It
 * is the least any Effect library pays for that call; the library's targets are stated against it, and the raw rows
 * show what the floor itself costs. Never slowed down: no service, no span, no extra step.
 */
export const effectFloor = (inFlight: number, body: (i: number) => Promise<unknown>): Runner =>
  effectWorkers(
    inFlight,
    (i) =>
      Effect.async<unknown, unknown>((resume) => {
        body(i).then(
          (a) => resume(Effect.succeed(a)),
          (e) => resume(Effect.fail(e))
        )
      }),
    Effect.runPromise
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
  "rate-limiter-flexible": packageVersion("rate-limiter-flexible"),
  bentocache: packageVersion("bentocache"),
  "@effect/experimental": packageVersion("@effect/experimental"),
  node: process.version
})
