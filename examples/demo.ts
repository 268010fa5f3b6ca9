/**
 * The demo: one keyspace, three modes, against REDIS_URL (default redis://127.0.0.1:6379).
 * It works and explains itself whether or not a Redis is running. Every key it writes starts
 * with its own prefix, `effect-failclosed-demo:` (the `keyPrefix` option of the modes), never
 * the default `fc:` of an application, so it cannot touch an application's keyspaces on the
 * same Redis:
 *
 *   npm run demo                                   # against the local Redis, if any
 *   REDIS_URL=redis://127.0.0.1:1 npm run demo     # a Redis that is not there
 */
import { Console, Effect, Layer, Logger, Option, Schema } from "effect"
import {
  CacheBackendUnavailable,
  DistributedCache,
  explicitDegraded,
  Keyspace,
  localOnly,
  RedisClient,
  SecurityEvent,
  strictDistributed
} from "effect-failclosed"

const Sessions = Keyspace.make({
  name: "demo-sessions",
  key: Schema.Struct({ id: Schema.String }),
  value: Schema.Struct({ user: Schema.String, roles: Schema.Array(Schema.String) }),
  timeToLive: "1 minute"
})

/** what an application does with the cache; the same code runs in every mode */
const program = Effect.gen(function* () {
  yield* Sessions.set({ id: "s-1" }, { user: "ada", roles: ["admin"] }, { tenant: "acme" })
  const session = yield* Sessions.get({ id: "s-1" }, { tenant: "acme" })
  const other = yield* Sessions.get({ id: "s-1" }, { tenant: "globex" })
  const stats = yield* Effect.flatMap(DistributedCache, (cache) => cache.stats)
  yield* Console.log(
    `  get (tenant acme)   -> ${Option.match(session, {
      onNone: () => "miss",
      onSome: (c) => `${JSON.stringify(c.value)} from ${c.backend}${c.degraded ? " (DEGRADED: node-local)" : ""}`
    })}`
  )
  yield* Console.log(
    `  get (tenant globex) -> ${Option.isNone(other) ? "miss (tenants never share entries)" : "HIT?!"}`
  )
  yield* Console.log(`  stats               -> mode=${stats.mode} backend=${stats.backend} hits=${stats.hits}`)
  // a distributed deletion cannot be confirmed node-locally: invalidate/clear fail closed in
  // every Redis mode, and the caller decides, visibly, what that means
  yield* Sessions.invalidate({ id: "s-1" }, { tenant: "acme" }).pipe(
    Effect.flatMap((deleted) => Console.log(`  invalidate          -> ${deleted ? "deleted" : "nothing to delete"}`)),
    Effect.catchTag("CacheBackendUnavailable", (error) =>
      Console.log(`  invalidate          -> CacheBackendUnavailable (${error.reason}); caller answers 503`)
    )
  )
})

/** security events arrive as structured objects through Effect's Logger */
const eventLogger = Logger.make(({ message }) => {
  const [event] = Array.isArray(message) ? message : [message]
  if (Schema.is(SecurityEvent)(event)) console.log(`  [security event] ${event.event}: ${event.detail}`)
})

const url = process.env["REDIS_URL"] ?? "redis://127.0.0.1:6379"
const redis = RedisClient.layer({ url, startupTimeout: "1 second" })
/** the demo's own keys: an application on the same Redis uses the default prefix `fc` (or its own) */
const keyPrefix = "effect-failclosed-demo"

const section = (title: string, explanation: string) => Console.log(`\n== ${title}\n   ${explanation}`)

const main = Effect.gen(function* () {
  yield* Console.log(`effect-failclosed demo, REDIS_URL=${url.replace(/\/\/[^@]*@/, "//<credentials>@")}`)
  yield* Console.log(`every key it writes starts with "${keyPrefix}:" (an application's keys are left alone)`)

  yield* section(
    "StrictDistributed (the default)",
    "Redis or nothing: if Redis is unavailable the Layer fails with CacheBackendUnavailable."
  )
  yield* program.pipe(
    Effect.provide(strictDistributed({ keyPrefix, cooldown: "500 millis" }).pipe(Layer.provide(redis))),
    Effect.catchTag("CacheBackendUnavailable", (error: CacheBackendUnavailable) =>
      Console.log(`  caught ${error._tag} (operation ${error.operation}):\n  ${error.message}`)
    )
  )

  yield* section(
    "ExplicitDegraded (opt-in)",
    "Redis when it answers; otherwise node-local, every result marked degraded, and a security event."
  )
  yield* program.pipe(Effect.provide(explicitDegraded({ keyPrefix }).pipe(Layer.provide(redis))))

  yield* section("LocalOnly (tests, single process)", "Never touches Redis; its Layer needs no RedisClient.")
  yield* program.pipe(Effect.provide(localOnly({ keyPrefix })))
})

main.pipe(Effect.provide(Logger.replace(Logger.defaultLogger, eventLogger)), Effect.runPromise).catch((error) => {
  console.error(error)
  process.exitCode = 1
})
