/**
 * The health check: Redis reachable, the breakers, the near caches' proofs, within commandTimeout, on a real
 * password-protected redis-server that is killed and paused; its readiness and liveness handlers over HTTP; and what
 * it answers holds no URL, address, password, key or tenant id.
 */
import { createServer } from "node:http"
import { HttpRouter, HttpServer } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Context, Duration, Effect, Layer, Logger, LogLevel, Option, Schema } from "effect"
import {
  type DistributedCache,
  explicitDegraded,
  Health,
  Keyspace,
  LocalOnly,
  RedisClient,
  strictDistributed
} from "effect-failclosed"
import { type RedisServer, redisServer } from "./support/RedisServer.js"

const PASSWORD = "health-pw-Zq81-secret"
const TENANT = "tenant-7f3c-acme"
const COMMAND_TIMEOUT_MS = 200
/** scheduling slack on a shared 2-core machine */
const SLACK_MS = 300
const MAX_STALENESS_MS = 300

const Profiles = Keyspace.make({
  name: "health-profiles",
  key: Schema.Struct({ userId: Schema.Number }),
  value: Schema.String,
  timeToLive: "1 minute",
  nearCache: { capacity: 100, maxStaleness: Duration.millis(MAX_STALENESS_MS) }
})

/** a redis-server that requires a password (set once it answered, so the harness could check it is ours) */
const protectedRedis = Effect.gen(function* () {
  const redis = yield* redisServer()
  yield* Effect.promise(() => redis.command("CONFIG", "SET", "requirepass", PASSWORD))
  return redis
})

const urlOf = (redis: RedisServer) => `redis://:${PASSWORD}@127.0.0.1:${redis.port}`
const clientOf = (redis: RedisServer) =>
  RedisClient.layer({
    url: urlOf(redis),
    commandTimeout: Duration.millis(COMMAND_TIMEOUT_MS),
    connectTimeout: "300 millis",
    maxReconnectDelay: "100 millis"
  })
type Cache = Layer.Layer<DistributedCache, unknown>
const modes = {
  StrictDistributed: (redis: RedisServer): Cache =>
    strictDistributed({ cooldown: "5 seconds" }).pipe(Layer.provide(clientOf(redis))),
  ExplicitDegraded: (redis: RedisServer): Cache =>
    explicitDegraded({ cooldown: "5 seconds" }).pipe(Layer.provide(clientOf(redis)))
}

/** nothing that locates Redis, authenticates to it, or names a key or tenant */
const expectNothingSecret = (text: string, redis: RedisServer) => {
  for (const secret of [
    PASSWORD,
    encodeURIComponent(PASSWORD),
    "redis://",
    "127.0.0.1",
    String(redis.port),
    TENANT,
    Buffer.from(TENANT, "utf16le").toString("base64url"),
    "userId",
    "12345"
  ]) {
    expect(text).not.toContain(secret)
  }
}

/** the check, timed */
const timedCheck = <R>(run: <A, E>(self: Effect.Effect<A, E, DistributedCache>) => Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const start = performance.now()
    const report = yield* run(Health.check)
    return [report, performance.now() - start] as const
  })

/** until the near cache of Profiles has served a near hit (tracking up and proven) */
const nearHitOf = <R>(run: <A, E>(self: Effect.Effect<A, E, DistributedCache>) => Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    yield* run(Profiles.set({ userId: 12345 }, "Ada", { tenant: TENANT }))
    for (let i = 0; i < 100; i++) {
      const cached = yield* run(Profiles.get({ userId: 12345 }, { tenant: TENANT }))
      if (Option.isSome(cached) && cached.value.near) return
      yield* Effect.sleep("20 millis")
    }
    throw new Error("no near hit within 2 s")
  })

const NodeServer = NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" })
const probes = HttpRouter.empty.pipe(
  HttpRouter.get("/readyz", Health.readiness),
  HttpRouter.get("/livez", Health.liveness)
)
const serveProbes = (cache: Cache) =>
  Effect.map(
    Layer.build(HttpServer.serve(probes).pipe(Layer.provide(cache), Layer.provideMerge(NodeServer))),
    (context) => {
      const address = Context.get(context, HttpServer.HttpServer).address
      if (address._tag !== "TcpAddress") throw new Error("expected a TCP address")
      return `http://127.0.0.1:${address.port}`
    }
  )
const get = (url: string) =>
  Effect.promise(async () => {
    const response = await fetch(url, { signal: AbortSignal.timeout(10_000) })
    return {
      status: response.status,
      contentType: response.headers.get("content-type"),
      cacheControl: response.headers.get("cache-control"),
      text: await response.text()
    }
  })

const quiet = Logger.withMinimumLogLevel(LogLevel.None)

describe("Health.check", () => {
  it.effect("LocalOnly: pass, with no Redis to reach and nothing else to report", () =>
    Effect.gen(function* () {
      expect(yield* Health.check).toEqual({
        status: "pass",
        mode: "LocalOnly",
        backend: "local",
        reachable: null,
        breakers: [],
        nearCaches: []
      })
    }).pipe(Effect.provide(LocalOnly))
  )

  for (const [mode, layer] of Object.entries(modes)) {
    it.scopedLive(
      `${mode}: pass with Redis up and the near cache proven; a killed Redis is seen by an idle node within commandTimeout`,
      () =>
        Effect.gen(function* () {
          const redis = yield* protectedRedis
          const cache = yield* Layer.build(layer(redis))
          const run = <A, E>(self: Effect.Effect<A, E, DistributedCache>) => Effect.provide(self, cache)
          yield* nearHitOf(run)
          const [up] = yield* timedCheck(run)
          expect(up).toEqual({
            status: "pass",
            mode,
            backend: "redis",
            reachable: true,
            breakers: [{ domain: "all", open: false }],
            nearCaches: [{ keyspace: "health-profiles", proven: true }]
          })
          expectNothingSecret(JSON.stringify(up), redis)

          // no request after the kill: only the check's own PING can see the outage
          yield* Effect.promise(() => redis.kill())
          const [down, downMs] = yield* timedCheck(run)
          expect(downMs).toBeLessThan(COMMAND_TIMEOUT_MS + SLACK_MS)
          expect(down).toMatchObject({
            status: mode === "StrictDistributed" ? "fail" : "warn",
            mode,
            reachable: false,
            // the check is beside the breaker: it does not open it
            breakers: [{ domain: "all", open: false }]
          })
          expectNothingSecret(JSON.stringify(down), redis)

          // a request finds the outage: the breaker opens, and the check says so
          yield* Effect.exit(run(Profiles.set({ userId: 1 }, "x")))
          // and within maxStaleness the near cache has lost its proof
          yield* Effect.sleep(Duration.millis(MAX_STALENESS_MS + 100))
          const [after] = yield* timedCheck(run)
          expect(after.breakers).toEqual([{ domain: "all", open: true }])
          expect(after.backend).toBe(mode === "StrictDistributed" ? "redis" : "local_degraded")
          expect(after.nearCaches).toEqual([{ keyspace: "health-profiles", proven: false }])
        }).pipe(quiet)
    )
  }

  it.scopedLive(
    "a paused (black-holed) Redis: the check still answers within commandTimeout, the near cache loses its proof",
    () =>
      Effect.gen(function* () {
        const redis = yield* protectedRedis
        const cache = yield* Layer.build(modes.ExplicitDegraded(redis))
        const run = <A, E>(self: Effect.Effect<A, E, DistributedCache>) => Effect.provide(self, cache)
        yield* nearHitOf(run)
        redis.pause()
        yield* Effect.sleep(Duration.millis(MAX_STALENESS_MS + 100))
        const [paused, pausedMs] = yield* timedCheck(run)
        expect(pausedMs).toBeLessThan(COMMAND_TIMEOUT_MS + SLACK_MS)
        expect(paused).toMatchObject({
          status: "warn",
          reachable: false,
          nearCaches: [{ keyspace: "health-profiles", proven: false }]
        })
        redis.resume()
      }).pipe(quiet)
  )
})

describe("Health.readiness and Health.liveness over HTTP", () => {
  it.scopedLive(
    "StrictDistributed: ready while Redis answers, 503 once it is killed; alive throughout; nothing secret",
    () =>
      Effect.gen(function* () {
        const redis = yield* protectedRedis
        const base = yield* serveProbes(modes.StrictDistributed(redis))
        const ready = yield* get(`${base}/readyz`)
        expect(ready.status).toBe(200)
        expect(ready.contentType).toBe("application/health+json")
        expect(ready.cacheControl).toBe("no-store")
        expect(JSON.parse(ready.text)).toMatchObject({ status: "pass", mode: "StrictDistributed", reachable: true })
        expectNothingSecret(ready.text, redis)

        yield* Effect.promise(() => redis.kill())
        const notReady = yield* get(`${base}/readyz`)
        expect(notReady.status).toBe(503)
        expect(JSON.parse(notReady.text)).toMatchObject({ status: "fail", reachable: false })
        expectNothingSecret(notReady.text, redis)
        const alive = yield* get(`${base}/livez`)
        expect(alive.status).toBe(200)
        expect(JSON.parse(alive.text)).toMatchObject({ status: "fail" })
        expectNothingSecret(alive.text, redis)
      }).pipe(quiet)
  )

  it.scopedLive("ExplicitDegraded: still ready (200, warn) while it serves node-locally", () =>
    Effect.gen(function* () {
      const redis = yield* protectedRedis
      const base = yield* serveProbes(modes.ExplicitDegraded(redis))
      yield* Effect.promise(() => redis.kill())
      const ready = yield* get(`${base}/readyz`)
      expect(ready.status).toBe(200)
      expect(JSON.parse(ready.text)).toMatchObject({ status: "warn", mode: "ExplicitDegraded", reachable: false })
      expectNothingSecret(ready.text, redis)
    }).pipe(quiet)
  )
})
