/**
 * The `waitForReplicas` opt-in: replay claims and rate-limit decisions wait (Redis `WAIT`) for a replica to
 * acknowledge them, and fail closed when none does in time. Redis replicates asynchronously, so without it a claim
 * answered just before a failover can be lost with the master.
 */
import { describe, expect, it, layer } from "@effect/vitest"
import { Cause, Context, Duration, Effect, Exit, Layer, Option, Schedule } from "effect"
import {
  CacheBackendUnavailable,
  type DistributedCache,
  RateLimiter,
  RedisClient,
  ReplayGuard,
  strictDistributed
} from "effect-failclosed"
import { redisCluster, type RedisCluster } from "../support/RedisCluster.js"
import { redisServer } from "../support/RedisServer.js"

const COMMAND_TIMEOUT_MS = 300
const SLACK_MS = 400
const CLUSTER_COMMAND_TIMEOUT_MS = 1_000

const Nonces = ReplayGuard.make({ name: "nonces", window: "1 minute" })
const Limiter = RateLimiter.make({ name: "api", limit: 1000, window: "1 minute", algorithm: "sliding-window" })

const timed = <A, E, R>(self: Effect.Effect<A, E, R>) =>
  Effect.suspend(() => {
    const start = performance.now()
    return Effect.map(Effect.exit(self), (exit) => [exit, performance.now() - start] as const)
  })

const unavailableReason = <A, E>(exit: Exit.Exit<A, E>): string => {
  const failure = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : Option.none()
  if (Option.isNone(failure) || !(failure.value instanceof CacheBackendUnavailable)) {
    throw new Error(`expected CacheBackendUnavailable, got ${JSON.stringify(exit)}`)
  }
  return failure.value.reason
}

const node = (client: Layer.Layer<RedisClient>, waitForReplicas: number) =>
  Layer.build(Layer.fresh(strictDistributed({ waitForReplicas }).pipe(Layer.provide(client))))

describe("waitForReplicas", () => {
  it("rejects invalid options synchronously, and a replicaTimeout that is not below the command timeout", async () => {
    expect(() => strictDistributed({ waitForReplicas: -1 })).toThrow(/waitForReplicas/)
    expect(() => strictDistributed({ waitForReplicas: 1.5 })).toThrow(/waitForReplicas/)
    expect(() => strictDistributed({ waitForReplicas: 1, replicaTimeout: 0 })).toThrow(/replicaTimeout/)
    const client = RedisClient.layer({ url: "redis://127.0.0.1:1", commandTimeout: "100 millis" })
    const exit = await Effect.runPromiseExit(
      Effect.scoped(
        Layer.build(strictDistributed({ waitForReplicas: 1, replicaTimeout: "100 millis" }).pipe(Layer.provide(client)))
      )
    )
    expect(Exit.isFailure(exit) && Cause.isDie(exit.cause)).toBe(true)
  })

  it.scopedLive("a claim or a decision no replica acknowledges fails closed within the command timeout", () =>
    Effect.gen(function* () {
      const master = yield* redisServer({ args: ["--repl-diskless-sync-delay", "0"] })
      const replica = yield* redisServer({ args: ["--replicaof", "127.0.0.1", String(master.port)] })
      const client = RedisClient.layer({ url: master.url, commandTimeout: Duration.millis(COMMAND_TIMEOUT_MS) })
      const waiting = yield* node(client, 1)
      const plain = yield* node(client, 0)
      const on =
        (ctx: Context.Context<DistributedCache>) =>
        <A, E>(self: Effect.Effect<A, E, DistributedCache>) =>
          Effect.provide(self, ctx)
      // the master must see the replica online before WAIT can count it
      while (!/slave0:.*state=online/.test(yield* Effect.promise(() => master.command("INFO", "replication")))) {
        yield* Effect.sleep("20 millis")
      }
      // a replica that has just come online may need a moment before it acknowledges within the timeout
      const settle = Effect.retry({ schedule: Schedule.spaced("50 millis"), times: 100 })
      let attempt = 0
      const freshClaim = Effect.suspend(() => on(waiting)(Nonces.claim(`n1-${attempt++}`)))
      expect((yield* freshClaim.pipe(settle)).backend).toBe("redis")
      expect((yield* on(waiting)(Limiter.consume("alice")).pipe(settle)).allowed).toBe(true)

      replica.pause()
      const [claim, claimMillis] = yield* timed(on(waiting)(Nonces.claim("n2")))
      expect(unavailableReason(claim)).toMatch(/only 0 of 1 replica\(s\) acknowledged/)
      expect(claimMillis).toBeLessThan(COMMAND_TIMEOUT_MS + SLACK_MS)
      const [decision] = yield* timed(on(waiting)(Limiter.consume("alice")))
      expect(unavailableReason(decision)).toMatch(/replica/)
      // the master is up: no cooldown (the next claim waits for the replica again)
      const [again] = yield* timed(on(waiting)(Nonces.claim("n3")))
      expect(unavailableReason(again)).toMatch(/replica/)
      // the unacknowledged claim still holds the nonce on the master: a retry is refused, never let through twice
      const retry = yield* Effect.either(on(plain)(Nonces.claim("n2")))
      expect(retry._tag === "Left" && retry.left._tag).toBe("ReplayDetected")
      // without the option, the same claim is answered at once
      expect((yield* on(plain)(Nonces.claim("n4"))).backend).toBe("redis")

      replica.resume()
      let exit: Exit.Exit<unknown, unknown> = claim
      const deadline = performance.now() + 5_000
      while (Exit.isFailure(exit) && performance.now() < deadline) {
        yield* Effect.sleep("50 millis")
        exit = yield* Effect.exit(on(waiting)(Nonces.claim(`n5-${performance.now()}`)))
      }
      expect(Exit.isSuccess(exit)).toBe(true)
    })
  )
})

class Cluster extends Context.Tag("test/Cluster")<Cluster, RedisCluster>() {}

describe("waitForReplicas on a Redis Cluster", () => {
  layer(Layer.scoped(Cluster, redisCluster()), { excludeTestServices: true, timeout: "60 seconds" })((it) => {
    it.scoped("WAIT goes to the master of the key's slot: only that shard's claims fail when its replica hangs", () =>
      Effect.gen(function* () {
        const cluster = yield* Cluster
        const ctx = yield* node(
          // a longer command timeout than the single-node case: WAIT's replicaTimeout (half of it) must outlast a
          // replica's acknowledgement on a loaded 2-core machine running six servers
          RedisClient.layerCluster({
            nodes: cluster.nodes,
            commandTimeout: Duration.millis(CLUSTER_COMMAND_TIMEOUT_MS)
          }),
          1
        )
        const claim = (nonce: string) => Effect.exit(Effect.provide(Nonces.claim(nonce), ctx))
        const nodes = yield* Effect.promise(() => cluster.topology())
        const victim = cluster.serverAt(nodes.find((n) => n.role === "master")!.port)
        const replica = yield* Effect.promise(() => cluster.replicaOf(victim))
        // every master must see its replica online before WAIT can count it (a replica may still be joining on a
        // busy machine), and a just-online replica may need a moment before it acknowledges within the timeout:
        // warm up with fresh nonces until one round is acknowledged on every shard
        for (const master of nodes.filter((n) => n.role === "master")) {
          const server = cluster.serverAt(master.port)
          while (!/slave0:.*state=online/.test(yield* Effect.promise(() => server.command("INFO", "replication")))) {
            yield* Effect.sleep("20 millis")
          }
        }
        let round = 0
        const warmUp = Effect.suspend(() => {
          round++
          return Effect.forEach(
            Array.from({ length: 30 }, (_, i) => `warm-${round}-${i}`),
            (nonce) => Effect.flatten(claim(nonce))
          )
        })
        yield* warmUp.pipe(Effect.retry({ schedule: Schedule.spaced("50 millis"), times: 100 }))
        // nonces on every shard: all claims are acknowledged
        const nonces = Array.from({ length: 30 }, (_, i) => `nonce-${i}`)
        for (const nonce of nonces) expect(Exit.isSuccess(yield* claim(nonce))).toBe(true)
        const before = Number(yield* Effect.promise(() => victim.command("DBSIZE")))
        replica.pause()
        // one at a time: WAIT blocks the master's connection for replicaTimeout, so concurrent claims on the hung
        // shard would also fail, by timeout, and then by cooldown, without having written anything
        const results = yield* Effect.forEach(nonces, (nonce) => claim(`${nonce}-b`)).pipe(
          Effect.ensuring(Effect.sync(() => replica.resume()))
        )
        const failed = results.filter(Exit.isFailure)
        // some nonces land on the victim's shard, most elsewhere
        expect(failed.length).toBeGreaterThan(0)
        expect(failed.length).toBeLessThan(nonces.length)
        for (const exit of failed) expect(unavailableReason(exit)).toMatch(/only 0 of 1 replica/)
        // exactly the claims whose keys live on the victim failed (each still wrote its key there)
        const after = Number(yield* Effect.promise(() => victim.command("DBSIZE")))
        expect(after - before).toBe(failed.length)
      })
    )
  })
})
