/**
 * The tracking connections of a Redis-mode cache, bound to its Layer: the mechanism is the core's `Tracking`
 * (`@effect-failclosed/core`, `redis/tracking.ts`: which connections, the proof, a stall pauses and a loss empties).
 */
import * as Effect from "effect/Effect"
import type { Cluster, Redis } from "ioredis"
import { Tracking } from "@effect-failclosed/core"

export { Tracking }

/**
 * The tracking connections of a Redis-mode cache, made with the cache's Layer and closed with it (opened only when a
 * near-cache keyspace first uses the cache).
 * @internal
 */
export const makeTracking = (client: Redis | Cluster) =>
  Effect.acquireRelease(
    Effect.sync(() => new Tracking(client)),
    (tracking) => Effect.sync(() => tracking.close())
  )
