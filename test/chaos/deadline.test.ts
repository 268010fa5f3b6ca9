/**
 * Found by the chaos suite: with ioredis auto-pipelining, a command issued while an earlier
 * pipeline waits on a silent Redis is held client-side, unwritten and without a timer, until that
 * pipeline settles; only then does its own command timeout start. A call could take up to twice
 * the command timeout. Every call must settle within the command timeout of its own start.
 */
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Exit, Layer } from "effect"
import { DistributedCache, explicitDegraded, RedisClient, strictDistributed } from "effect-failclosed"
import { redisServer } from "../support/RedisServer.js"

const COMMAND_TIMEOUT = 300
/** event-loop lag of a busy shared machine; the bug adds close to a whole COMMAND_TIMEOUT */
const MARGIN = 150

describe("a call on a silent Redis", () => {
  for (const [mode, layer] of [
    ["StrictDistributed", strictDistributed({ cooldown: "1 second" })],
    ["ExplicitDegraded", explicitDegraded({ cooldown: "1 second" })]
  ] as const) {
    it.scopedLive(`${mode}: settles within the command timeout of its own start, even behind another call`, () =>
      Effect.gen(function* () {
        const server = yield* redisServer()
        const cache = yield* Layer.build(
          layer.pipe(Layer.provide(RedisClient.layer({ url: server.url, commandTimeout: COMMAND_TIMEOUT })))
        ).pipe(Effect.map(Context.get(DistributedCache)))
        yield* cache.set("fc:deadline:k", "v", undefined)

        server.pause()
        // the first call's pipeline is written and waits for Redis
        const first = yield* Effect.fork(cache.get("fc:deadline:a"))
        yield* Effect.sleep(20)
        // the second call is made while the breaker is still closed, so it goes to Redis too
        const start = performance.now()
        const second = yield* Effect.exit(cache.get("fc:deadline:b"))
        const elapsed = performance.now() - start
        yield* Effect.exit(first.await)
        server.resume()

        if (mode === "StrictDistributed") expect(Exit.isFailure(second)).toBe(true)
        else expect(Exit.isSuccess(second) && second.value.backend === "local_degraded").toBe(true)
        expect(elapsed).toBeLessThan(COMMAND_TIMEOUT + MARGIN)
      })
    )
  }
})
