/**
 * "Nodes" for tests of shared state: each one its own ioredis connection and its own cache, as
 * two processes behind a load balancer would have.
 */
import type { Context, Scope } from "effect"
import { Duration, Effect, Layer } from "effect"
import type { CacheBackendUnavailable, DistributedCache } from "effect-failclosed"
import { RedisClient, strictDistributed } from "effect-failclosed"
import type { RedisServer } from "./RedisServer.js"

export type Node = Context.Context<DistributedCache>

/**
 * Tests of exactness use a generous command timeout: a loaded CI machine must not turn them into
 * timeout tests. Fail-closed tests pass their own tight timeout.
 */
export const LOAD_COMMAND_TIMEOUT_MS = 3_000

/** one node: its own connection and its own StrictDistributed cache */
export const strictNode = (
  url: string,
  commandTimeoutMs: number = LOAD_COMMAND_TIMEOUT_MS
): Effect.Effect<Node, CacheBackendUnavailable, Scope.Scope> =>
  Layer.build(
    Layer.fresh(
      strictDistributed().pipe(
        Layer.provide(RedisClient.layer({ url, commandTimeout: Duration.millis(commandTimeoutMs) }))
      )
    )
  )

/** runs an effect on one node */
export const on =
  (node: Node) =>
  <A, E>(effect: Effect.Effect<A, E, DistributedCache>): Effect.Effect<A, E> =>
    Effect.provide(effect, node)

/** redis-cli against a harness server */
export const cli = (redis: RedisServer, ...args: Array<string>) => Effect.promise(() => redis.command(...args))
