/**
 * An Effect 4 node for the interop test of the two Effect lines (effect4/test/interop.test.ts): runs the steps given
 * as JSON in argv[2] against REDIS_URL with `effect-failclosed-effect4` on StrictDistributed, prints one JSON line of
 * results. The Effect 3 node (test/interop/effect3Node.ts) runs the same steps with the Effect 3 package.
 */
import { Effect, Layer, Option, Schema } from "effect"
import { type DistributedCache, Keyspace, RedisClient, StrictDistributed } from "effect-failclosed-effect4"
import { RateLimiter, ReplayGuard } from "effect-failclosed-effect4"

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

// exactOptionalPropertyTypes: an absent tenant is left out, not passed as undefined
const tenantOf = (step: { readonly tenant?: string }) => (step.tenant === undefined ? {} : { tenant: step.tenant })

const run = (step: Step): Effect.Effect<unknown, unknown, DistributedCache> => {
  switch (step.op) {
    case "set":
      return Effect.as(
        Profiles.set(
          { id: step.id },
          { name: step.name },
          step.tags === undefined ? tenantOf(step) : { ...tenantOf(step), tags: step.tags }
        ),
        "ok"
      )
    case "get":
      return Effect.map(Profiles.get({ id: step.id }, tenantOf(step)), (o) =>
        Option.getOrNull(Option.map(o, (c) => c.value.name))
      )
    case "invalidate":
      return Profiles.invalidate({ id: step.id }, tenantOf(step))
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
          ...tenantOf(step),
          tags: () => step.tags
        }),
        (c) => c.value.name
      )
    case "invalidateTag":
      return Effect.as(Profiles.invalidateTag(step.tag, tenantOf(step)), "ok")
    case "claim":
      return Webhooks.claim(step.nonce, tenantOf(step)).pipe(
        Effect.as("claimed"),
        Effect.catchTag("ReplayDetected", () => Effect.succeed("replay"))
      )
  }
}

const steps = JSON.parse(process.argv[2] ?? "[]") as ReadonlyArray<Step>
const cache = StrictDistributed.pipe(Layer.provide(RedisClient.layerConfig()))
const program = Effect.forEach(steps, run).pipe(
  Effect.map((results) => ({ line: "effect4", node: process.version, results }))
)
Effect.runPromise(Effect.provide(program, cache)).then(
  (out) => console.log(JSON.stringify(out)),
  (error) => {
    console.error(String(error))
    process.exit(1)
  }
)
