/**
 * Real redis-server processes for the Effect 4 line's tests: the Effect 3 package's harness (plain TypeScript:
 * free loopback ports, never 6379, only our own PIDs signalled, orphans killed), as an Effect 4 scoped resource.
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { type RedisServer, startRedis, type StartRedisOptions } from "../../../test/support/RedisServer.js"

export type { RedisServer }
export { freePort } from "../../../test/support/RedisServer.js"

/** started on acquire, stopped on release */
export const redisServer = (options?: StartRedisOptions): Effect.Effect<RedisServer, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(() => startRedis(options)),
    (server) => Effect.promise(() => server.stop())
  )
