/**
 * An Effect 3 node for the interop test of the two Effect lines (effect4/test/interop.test.ts): runs the steps given
 * as JSON in argv[2] against REDIS_URL with `effect-failclosed` on StrictDistributed, prints one JSON line of
 * results. The Effect 4 node (effect4/test/interop/effect4Node.ts) runs the same steps with the Effect 4 package.
 */
import { Effect, Layer, Option, Schema } from "effect"
import { type DistributedCache, Keyspace, RedisClient, StrictDistributed } from "effect-failclosed"
import * as RateLimiter from "effect-failclosed/RateLimiter"
import * as ReplayGuard from "effect-failclosed/ReplayGuard"

type Step =
  | {
      readonly op: "set"
      readonly id: number
      readonly name: string
      readonly tenant?: string
      readonly tags?: ReadonlyArray<string>
    }
  | { readonly op: "get"; readonly id: number; readonly tenant?: string }
  | { readonly op: "invalidate"; readonly id: number; readonly tenant?: string }
  | {
      readonly op: "consume"
      readonly algorithm: RateLimiter.RateLimiterOptions["algorithm"]
      readonly subject: string
    }
  | { readonly op: "claim"; readonly nonce: string; readonly tenant?: string }
  | { readonly op: "sealed"; readonly id: number; readonly name: string }
  | {
      readonly op: "tagged"
      readonly id: number
      readonly name: string
      readonly tenant?: string
      readonly tags: ReadonlyArray<string>
    }
  | { readonly op: "invalidateTag"; readonly tag: string; readonly tenant?: string }

const Profiles = Keyspace.make({
  name: "profiles",
  key: Schema.Struct({ id: Schema.Number }),
  value: Schema.Struct({ name: Schema.String }),
  timeToLive: "1 minute"
})
// a day: a fixed window is aligned to the server's clock, and the nodes' turns must not straddle a window's end
const limiters = {
  "fixed-window": RateLimiter.make({ name: "login", limit: 4, window: "1 day", algorithm: "fixed-window" }),
  "sliding-window": RateLimiter.make({ name: "login", limit: 4, window: "1 day", algorithm: "sliding-window" }),
  "token-bucket": RateLimiter.make({ name: "login", limit: 4, window: "1 day", algorithm: "token-bucket" })
}
const Webhooks = ReplayGuard.make({ name: "webhooks", window: "1 minute" })

const run = (step: Step): Effect.Effect<unknown, unknown, DistributedCache> => {
  switch (step.op) {
    case "set":
      return Effect.as(
        Profiles.set({ id: step.id }, { name: step.name }, { tenant: step.tenant, tags: step.tags }),
        "ok"
      )
    case "get":
      return Effect.map(Profiles.get({ id: step.id }, { tenant: step.tenant }), (o) =>
        Option.getOrNull(Option.map(o, (c) => c.value.name))
      )
    case "invalidate":
      return Profiles.invalidate({ id: step.id }, { tenant: step.tenant })
    case "consume":
      return Effect.map(limiters[step.algorithm].consume(step.subject), (r) => ({
        allowed: r.allowed,
        remaining: r.remaining
      }))
    case "sealed":
      // a getOrCompute with a stale window: the entry is sealed with its freshness (the core's envelope)
      return Effect.map(
        Profiles.getOrCompute({ id: step.id }, Effect.succeed({ name: step.name }), {
          staleWhileRevalidate: "1 minute"
        }),
        (c) => c.value.name
      )
    case "tagged":
      // a getOrCompute whose computed value decides its tags
      return Effect.map(
        Profiles.getOrCompute({ id: step.id }, Effect.succeed({ name: step.name }), {
          tenant: step.tenant,
          tags: () => step.tags
        }),
        (c) => c.value.name
      )
    case "invalidateTag":
      return Effect.as(Profiles.invalidateTag(step.tag, { tenant: step.tenant }), "ok")
    case "claim":
      return Webhooks.claim(step.nonce, { tenant: step.tenant }).pipe(
        Effect.as("claimed"),
        Effect.catchTag("ReplayDetected", () => Effect.succeed("replay"))
      )
  }
}

const steps = JSON.parse(process.argv[2] ?? "[]") as ReadonlyArray<Step>
const cache = StrictDistributed.pipe(Layer.provide(RedisClient.layerConfig()))
const program = Effect.forEach(steps, run).pipe(
  Effect.map((results) => ({ line: "effect3", node: process.version, results }))
)
Effect.runPromise(Effect.provide(program, cache)).then(
  (out) => console.log(JSON.stringify(out)),
  (error) => {
    console.error(String(error))
    process.exit(1)
  }
)
