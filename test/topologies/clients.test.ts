/**
 * The Redis Cluster and Sentinel clients: options, Config, startup probe semantics per mode, no command that hangs,
 * a clear that never reports a partial success, and closing.
 */
import * as net from "node:net"
import { describe, expect, it, layer } from "@effect/vitest"
import { Cause, ConfigProvider, Context, Duration, Effect, Exit, Layer, Logger, Option, Schema } from "effect"
import {
  DistributedCache,
  explicitDegraded,
  Keyspace,
  RedisClient,
  SecurityEvent,
  strictDistributed
} from "effect-failclosed"
import { keySlot } from "@effect-failclosed/core"
import { redisCluster, type RedisCluster } from "../support/RedisCluster.js"
import { redisSentinel } from "../support/RedisSentinel.js"

const COMMAND_TIMEOUT_MS = 200
const STARTUP_TIMEOUT_MS = 500
/** scheduling slack on a shared 2-core machine */
const SLACK_MS = 400

const timeouts = {
  commandTimeout: Duration.millis(COMMAND_TIMEOUT_MS),
  connectTimeout: Duration.millis(300),
  maxReconnectDelay: Duration.millis(100),
  startupTimeout: Duration.millis(STARTUP_TIMEOUT_MS)
}

const Items = Keyspace.make({ name: "items", key: Schema.String, value: Schema.Number, timeToLive: "1 minute" })

/** a loopback port nobody listens on */
const deadPort = Effect.promise(
  () =>
    new Promise<number>((resolve, reject) => {
      const server = net.createServer()
      server.once("error", reject)
      server.listen(0, "127.0.0.1", () => {
        const address = server.address()
        server.close(() => (typeof address === "object" && address !== null ? resolve(address.port) : reject()))
      })
    })
)

const timed = <A, E, R>(self: Effect.Effect<A, E, R>) =>
  Effect.suspend(() => {
    const start = performance.now()
    return Effect.map(Effect.exit(self), (exit) => [exit, performance.now() - start] as const)
  })

const defectMessage = <A, E>(exit: Exit.Exit<A, E>): string => {
  if (Exit.isSuccess(exit)) throw new Error("expected a defect")
  const defect = Cause.dieOption(exit.cause)
  if (Option.isNone(defect)) throw new Error(`expected a defect, got ${Cause.pretty(exit.cause)}`)
  return (defect.value as Error).message
}

const failureTag = <A, E>(exit: Exit.Exit<A, E>): string | undefined =>
  Exit.isFailure(exit)
    ? Option.getOrUndefined(Option.map(Cause.failureOption(exit.cause), (e) => (e as { _tag: string })._tag))
    : undefined

/** the security event kinds logged by `self` */
const withEvents = <A, E, R>(self: Effect.Effect<A, E, R>) =>
  Effect.suspend(() => {
    const events: Array<string> = []
    const isEvent = Schema.is(SecurityEvent)
    const logger = Logger.make(({ message }) => {
      const event = Array.isArray(message) ? message[0] : message
      events.push(isEvent(event) ? event.event : "not a security event")
    })
    return Effect.map(Effect.provide(self, Logger.replace(Logger.defaultLogger, logger)), (a) => [a, events] as const)
  })

describe("cluster and sentinel options", () => {
  it.effect("invalid options are a synchronous programmer error that never echoes the address", () =>
    Effect.gen(function* () {
      const cases: Array<[Effect.Effect<unknown, unknown, never>, RegExp]> = [
        [Effect.scoped(RedisClient.makeCluster({ nodes: [] })), /at least one "host:port"/],
        [Effect.scoped(RedisClient.makeCluster({ nodes: ["127.0.0.1"] })), /nodes\[0\] must be "host:port"/],
        [Effect.scoped(RedisClient.makeCluster({ nodes: ["127.0.0.1:7000", "h:0"] })), /nodes\[1\].*bad port/],
        [Effect.scoped(RedisClient.makeCluster({ nodes: ["redis://user:s3cret@h:7000"] })), /nodes\[0\].*bad host/],
        [Effect.scoped(RedisClient.makeCluster({ nodes: ["h:7000"], maxRedirections: -1 })), /maxRedirections/],
        [Effect.scoped(RedisClient.makeCluster({ nodes: ["h:7000"], retryDelay: 0 })), /retryDelay/],
        [Effect.scoped(RedisClient.makeSentinel({ sentinels: ["h:26379"], name: "" })), /name/],
        [Effect.scoped(RedisClient.makeSentinel({ sentinels: [], name: "cache" })), /at least one/],
        [Effect.scoped(RedisClient.makeSentinel({ sentinels: ["h:26379"], name: "c", db: 1.5 })), /db/]
      ]
      for (const [make, message] of cases) {
        const text = defectMessage(yield* Effect.exit(make))
        expect(text).toMatch(message)
        expect(text).not.toContain("s3cret")
      }
      // the Layers throw when they are made
      expect(() => RedisClient.layerCluster({ nodes: ["redis://user:s3cret@h:7000"] })).toThrow(/bad host/)
      expect(() => RedisClient.layerCluster({ nodes: ["h:7000"], commandTimeout: 0 })).toThrow(/commandTimeout/)
      expect(() => RedisClient.layerSentinel({ sentinels: ["h:26379"], name: "" })).toThrow(/name/)
    })
  )

  it.effect("Config variants read the node lists and the master name", () =>
    Effect.gen(function* () {
      const provider = ConfigProvider.fromMap(
        new Map([
          ["REDIS_CLUSTER_NODES", "127.0.0.1:7000,[::1]:7001"],
          ["REDIS_SENTINELS", "127.0.0.1:26379"],
          ["REDIS_SENTINEL_NAME", "cache"],
          ["REDIS_PASSWORD", "s3cret"]
        ])
      )
      const describe = (layer: Layer.Layer<RedisClient, unknown>) =>
        Effect.scoped(Effect.map(Layer.build(layer), (ctx) => Context.get(ctx, RedisClient).description)).pipe(
          Effect.withConfigProvider(provider)
        )
      expect(yield* describe(RedisClient.layerClusterConfig())).toBe("cluster 127.0.0.1:7000,[::1]:7001")
      expect(yield* describe(RedisClient.layerSentinelConfig())).toBe('sentinel master "cache" via 127.0.0.1:26379')
      const missing = yield* Effect.exit(
        Layer.build(RedisClient.layerSentinelConfig()).pipe(
          Effect.scoped,
          Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["REDIS_SENTINELS", "h:1"]])))
        )
      )
      expect(Exit.isFailure(missing)).toBe(true)
    })
  )
})

describe("startup probe, per mode", () => {
  const unreachable = {
    cluster: (port: number) =>
      RedisClient.layerCluster({ nodes: [`127.0.0.1:${port}`], password: "s3cret", ...timeouts }),
    sentinel: (port: number) =>
      RedisClient.layerSentinel({
        sentinels: [`127.0.0.1:${port}`],
        name: "cache",
        password: "s3cret",
        sentinelPassword: "s3cret-too",
        ...timeouts
      })
  }
  for (const [topology, client] of Object.entries(unreachable)) {
    it.live(`${topology}: StrictDistributed fails at startup within startupTimeout; no secret in the error`, () =>
      Effect.gen(function* () {
        const port = yield* deadPort
        const [[exit, elapsed], events] = yield* withEvents(
          timed(Effect.scoped(Layer.build(strictDistributed().pipe(Layer.provide(client(port))))))
        )
        expect(failureTag(exit)).toBe("CacheBackendUnavailable")
        expect(JSON.stringify(Exit.isFailure(exit) ? Cause.squash(exit.cause) : null)).not.toContain("s3cret")
        expect(elapsed).toBeLessThan(STARTUP_TIMEOUT_MS + SLACK_MS)
        expect(events).toEqual(["BACKEND_UNAVAILABLE_AT_STARTUP"])
      })
    )

    it.live(`${topology}: ExplicitDegraded starts, logs one event and serves marked local results`, () =>
      Effect.gen(function* () {
        const port = yield* deadPort
        const [result, events] = yield* withEvents(
          Effect.scoped(
            Effect.gen(function* () {
              const ctx = yield* Layer.build(explicitDegraded().pipe(Layer.provide(client(port))))
              yield* Effect.provide(Items.set("a", 1), ctx)
              return yield* Effect.provide(Items.get("a"), ctx)
            })
          )
        )
        expect(result).toEqual(
          Option.some({ value: 1, backend: "local_degraded", degraded: true, near: false, stale: false })
        )
        expect(events).toEqual(["BACKEND_UNAVAILABLE_AT_STARTUP"])
      })
    )
  }
})

class Cluster extends Context.Tag("test/Cluster")<Cluster, RedisCluster>() {}

describe("cluster client against a real cluster", () => {
  layer(Layer.scoped(Cluster, redisCluster()), { excludeTestServices: true, timeout: "60 seconds" })((it) => {
    const strictNode = Effect.flatMap(Cluster, (cluster) =>
      Layer.build(
        Layer.fresh(
          strictDistributed().pipe(Layer.provide(RedisClient.layerCluster({ nodes: cluster.nodes, ...timeouts })))
        )
      )
    )

    it.effect("computes the same hash slot as Redis, hash tags included", () =>
      Effect.gen(function* () {
        const cluster = yield* Cluster
        const keys = ["", "a", "foo", "{user1000}.following", "{}x", "x{}{y}", "{a}{b}", "租户", "fc:{rf:x:-:y}:m"]
        for (let i = 0; i < 40; i++) keys.push(`fc:k:items:t${i}:${(i * 7919).toString(36)}`)
        for (const key of keys) expect(keySlot(key), key).toBe(yield* Effect.promise(() => cluster.slotOf(key)))
      })
    )

    it.scoped("a clear that cannot reach every master fails closed instead of clearing part", () =>
      Effect.gen(function* () {
        const cluster = yield* Cluster
        const ctx = yield* strictNode
        const run = <A, E>(self: Effect.Effect<A, E, DistributedCache>) => Effect.provide(self, ctx)
        yield* run(
          Effect.forEach(
            Array.from({ length: 60 }, (_, i) => i),
            (i) => Items.set(`k${i}`, i),
            { discard: true }
          )
        )
        const masters = (yield* Effect.promise(() => cluster.topology())).filter((n) => n.role === "master")
        const victim = cluster.serverAt(masters[0]!.port)
        const slot = masters[0]!.slots[0]![0]
        yield* Effect.promise(() => victim.kill())
        const [exit, elapsed] = yield* timed(run(Items.clear()))
        expect(failureTag(exit)).toBe("CacheBackendUnavailable")
        expect(elapsed).toBeLessThan(COMMAND_TIMEOUT_MS + SLACK_MS)
        // after the promotion, a clear succeeds without any intervention (the cooldown of "every shard" ends first)
        yield* Effect.promise(() => cluster.waitForPromotion(slot, victim))
        let cleared: Exit.Exit<number, unknown> = exit
        const deadline = performance.now() + 5_000
        while (Exit.isFailure(cleared) && performance.now() < deadline) {
          yield* Effect.sleep("100 millis")
          cleared = yield* Effect.exit(run(Items.clear()))
        }
        expect(Exit.isSuccess(cleared)).toBe(true)
        expect(yield* run(Effect.flatMap(DistributedCache, (c) => c.count(`${c.keyPrefix}:`)))).toBe(0)
      })
    )

    it.scoped("with every node paused no command hangs, and the client recovers unaided on resume", () =>
      Effect.gen(function* () {
        const cluster = yield* Cluster
        const ctx = yield* strictNode
        const run = <A, E>(self: Effect.Effect<A, E, DistributedCache>) => Effect.provide(self, ctx)
        yield* run(Items.set("p", 1))
        const live = cluster.servers.filter((s) => s.isRunning && !s.isPaused)
        for (const s of live) s.pause()
        const results = yield* Effect.all(
          Array.from({ length: 20 }, (_, i) =>
            timed(run<void, unknown>(i % 2 === 0 ? Items.get("p") : Items.set(`q${i}`, i)))
          ),
          { concurrency: "unbounded" }
        ).pipe(Effect.ensuring(Effect.sync(() => live.forEach((s) => s.resume()))))
        for (const [exit, elapsed] of results) {
          expect(failureTag(exit)).toBe("CacheBackendUnavailable")
          expect(elapsed).toBeLessThan(COMMAND_TIMEOUT_MS + 6 * 50 + SLACK_MS)
        }
        let value: Exit.Exit<unknown, unknown> = results[0]![0]
        const deadline = performance.now() + 5_000
        while (Exit.isFailure(value) && performance.now() < deadline) {
          yield* Effect.sleep("100 millis")
          value = yield* Effect.exit(run(Items.get("p")))
        }
        expect(value).toEqual(
          Exit.succeed(Option.some({ value: 1, backend: "redis", degraded: false, near: false, stale: false }))
        )
      })
    )
  })
})

describe("sentinel client against real sentinels", () => {
  it.scopedLive(
    "needs no sentinel while the master answers; with the master paused, commands fail within the bound",
    () =>
      Effect.gen(function* () {
        const setup = yield* redisSentinel()
        const ctx = yield* Layer.build(
          strictDistributed().pipe(
            Layer.provide(
              RedisClient.layerSentinel({ sentinels: setup.sentinelAddresses, name: setup.name, ...timeouts })
            )
          )
        )
        const run = <A, E>(self: Effect.Effect<A, E, DistributedCache>) => Effect.provide(self, ctx)
        yield* run(Items.set("s", 1))
        const master = yield* Effect.promise(() => setup.master())
        yield* Effect.promise(() => Promise.all(setup.sentinels.map((s) => s.kill())))
        expect(yield* run(Items.get("s"))).toEqual(
          Option.some({ value: 1, backend: "redis", degraded: false, near: false, stale: false })
        )
        master.pause()
        const results = yield* Effect.all(
          Array.from({ length: 10 }, () => timed(run(Items.get("s")))),
          { concurrency: "unbounded" }
        ).pipe(Effect.ensuring(Effect.sync(() => master.resume())))
        for (const [exit, elapsed] of results) {
          expect(failureTag(exit)).toBe("CacheBackendUnavailable")
          expect(elapsed).toBeLessThan(COMMAND_TIMEOUT_MS + SLACK_MS)
        }
      })
  )

  it.scopedLive(
    "comes back after the failover detector interrupts a reconnection (an ioredis race that ends the client)",
    () =>
      Effect.gen(function* () {
        const setup = yield* redisSentinel()
        const ctx = yield* Layer.build(
          RedisClient.layerSentinel({ sentinels: setup.sentinelAddresses, name: setup.name, ...timeouts })
        )
        const redis = Context.get(ctx, RedisClient)
        const client = redis.client as unknown as { status: string; connector: { disconnect(): void } }
        const cache = yield* Layer.build(strictDistributed().pipe(Layer.provide(Layer.succeedContext(ctx))))
        const master = yield* Effect.promise(() => setup.master())
        yield* Effect.promise(() => master.kill())
        // what ioredis' failover detector does on +switch-master, at the moment a reconnection is under way
        while (client.status !== "connecting") yield* Effect.sleep("1 millis")
        client.connector.disconnect()
        yield* Effect.promise(() => setup.waitForFailover(master))
        let exit: Exit.Exit<unknown, unknown> = Exit.fail("not tried")
        const deadline = performance.now() + 5_000
        while (Exit.isFailure(exit) && performance.now() < deadline) {
          yield* Effect.sleep("100 millis")
          exit = yield* Effect.exit(Effect.provide(Items.set("after", 1), cache))
        }
        expect(Exit.isSuccess(exit)).toBe(true)
      })
  )
})
