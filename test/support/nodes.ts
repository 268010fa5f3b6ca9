/**
 * "Nodes" for tests of shared state: each one its own ioredis connection and its own cache, as
 * two processes behind a load balancer would have.
 */
import { expect } from "@effect/vitest"
import type { Context, Scope } from "effect"
import { Duration, Effect, Either, Layer } from "effect"
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

/** the tight command timeout of the fail-closed tests */
export const FAIL_FAST_COMMAND_TIMEOUT_MS = 200

/**
 * Runs `call` on `node` and expects it to fail with CacheBackendUnavailable within the fail-fast command timeout
 * + 100 ms; `label` names the case in a failure.
 */
export const expectFailsClosed = <A, E>(node: Node, call: Effect.Effect<A, E, DistributedCache>, label: string) =>
  Effect.gen(function* () {
    const start = performance.now()
    const result = yield* Effect.either(on(node)(call))
    const elapsed = performance.now() - start
    expect(Either.isLeft(result) && (result.left as { readonly _tag?: unknown })._tag, label).toBe(
      "CacheBackendUnavailable"
    )
    expect(elapsed, label).toBeLessThan(FAIL_FAST_COMMAND_TIMEOUT_MS + 100)
  })
