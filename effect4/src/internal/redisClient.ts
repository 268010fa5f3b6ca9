/**
 * The body of `RedisClient` for Effect 4: settings checked once, the connection opened by the core
 * (`@effect-failclosed/core` connection.ts: fail-fast options, secret scrubber, ready wait, close) in a scoped
 * resource, and what the client would print routed to Effect's Logger.
 */
import * as Config from "effect/Config"
import { SourceError } from "effect/ConfigProvider"
import type * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import {
  awaitReady,
  closeClient,
  describeUrl,
  failFastOptions,
  makeSecretScrubber,
  redisUrlProblem,
  urlPassword
} from "@effect-failclosed/core"
import { Redis, type RedisOptions } from "ioredis"
import type { RedisClient, RedisClientOptions, RedisClientService } from "../RedisClient.js"
import { durationMillis, optionChecks } from "./options.js"

const check = optionChecks("RedisClient")
const DEFAULT_URL = "redis://127.0.0.1:6379"

const reveal = (u: string | Redacted.Redacted<string> | undefined): string | undefined =>
  u === undefined ? undefined : Redacted.isRedacted(u) ? Redacted.value(u) : u

/** the settings of a client, checked once (a Layer made with bad options throws when it is made) */
const settingsOf = (options: RedisClientOptions) => {
  const url = reveal(options.url) ?? DEFAULT_URL
  const problem = redisUrlProblem(url)
  if (problem !== undefined) check.invalid(`url ${problem}`)
  return {
    url,
    options,
    commandTimeoutMillis: check.duration("commandTimeout", options.commandTimeout, "timeout", "300 millis"),
    connectTimeoutMillis: check.duration("connectTimeout", options.connectTimeout, "timeout", "1 second"),
    maxReconnectDelayMillis: check.duration("maxReconnectDelay", options.maxReconnectDelay, "timeout", "500 millis"),
    startupTimeoutMillis: check.duration("startupTimeout", options.startupTimeout, "timeout", "2 seconds")
  }
}

type Settings = ReturnType<typeof settingsOf>

const open = (s: Settings): Effect.Effect<RedisClientService, never, Scope.Scope> =>
  Effect.flatMap(Effect.context<never>(), (context) => {
    const run = Effect.runForkWith(context)
    const password = reveal(s.options.password)
    const describeError = makeSecretScrubber([password, urlPassword(s.url), s.url])
    const redisOptions: RedisOptions = {
      ...failFastOptions({ ...s, enableAutoPipelining: s.options.enableAutoPipelining ?? true }),
      ...(s.options.username !== undefined ? { username: s.options.username } : {}),
      ...(password !== undefined ? { password } : {}),
      ...(s.options.tls !== undefined ? { tls: s.options.tls } : {})
    }
    return Effect.map(
      Effect.acquireRelease(
        Effect.sync(() => {
          const client = new Redis(s.url, redisOptions)
          // the failures reach callers as typed errors; these only say why a connection attempt failed
          client.on("error", (error: unknown) => {
            run(Effect.logDebug(`effect-failclosed: Redis connection error: ${describeError(error)}`))
          })
          return client
        }),
        (client) => Effect.callback<void>((resume) => closeClient(client, () => resume(Effect.void)))
      ),
      (client): RedisClientService => ({
        client,
        commandTimeout: Duration.millis(s.commandTimeoutMillis),
        startupTimeout: Duration.millis(s.startupTimeoutMillis),
        description: describeUrl(s.url),
        describeError,
        awaitReady: (timeout) =>
          Effect.callback<void, string>((resume) => {
            const cancel = awaitReady(
              client,
              describeError,
              Duration.toMillis(timeout),
              Duration.format(timeout),
              (f) => resume(f === undefined ? Effect.void : Effect.fail(f))
            )
            return Effect.sync(cancel)
          })
      })
    )
  })

/** @internal */
export const make = (options: RedisClientOptions = {}): Effect.Effect<RedisClientService, never, Scope.Scope> =>
  Effect.suspend(() => open(settingsOf(options)))

/** @internal */
export const layer = (
  tag: Context.Key<RedisClient, RedisClientService>,
  options: RedisClientOptions = {}
): Layer.Layer<RedisClient> => {
  const settings = settingsOf(options)
  return Layer.effect(
    tag,
    Effect.suspend(() => open(settings))
  )
}

const invalidConfig = (message: string) => new Config.ConfigError(new SourceError({ message }))

/** @internal */
export const layerConfig = (
  tag: Context.Key<RedisClient, RedisClientService>,
  config: Config.Config<RedisClientOptions> = clientConfig
): Layer.Layer<RedisClient, Config.ConfigError> =>
  Layer.effect(
    tag,
    Effect.flatMap(config, (options: RedisClientOptions) => {
      let settings: Settings
      try {
        settings = settingsOf(options)
      } catch (error) {
        return Effect.fail(invalidConfig(error instanceof Error ? error.message : String(error)))
      }
      return open(settings)
    })
  )

/** a duration: anything `Duration` reads ("300 millis"), or a plain number of milliseconds */
const durationConfig = (name: string): Config.Config<Option.Option<Duration.Duration>> =>
  Config.option(
    Config.String(name).pipe(
      Config.mapEffect((text) => {
        const trimmed = text.trim()
        const input = /^\d+(\.\d+)?$/.test(trimmed) ? Number(trimmed) : trimmed
        const millis = durationMillis(name, input, "timeout")
        return typeof millis === "string"
          ? Effect.fail(invalidConfig(`${millis} (a duration such as "300 millis", or milliseconds)`))
          : Effect.succeed(Duration.millis(millis))
      })
    )
  )

const urlConfig = Config.option(
  Config.Redacted("REDIS_URL").pipe(
    Config.mapEffect((url) =>
      redisUrlProblem(Redacted.value(url)) === undefined
        ? Effect.succeed(url)
        : Effect.fail(invalidConfig(`REDIS_URL ${redisUrlProblem(Redacted.value(url))}`))
    )
  )
)

/** @internal */
export const clientConfig: Config.Config<RedisClientOptions> = Config.all({
  url: urlConfig,
  username: Config.option(Config.String("REDIS_USERNAME")),
  password: Config.option(Config.Redacted("REDIS_PASSWORD")),
  commandTimeout: durationConfig("REDIS_COMMAND_TIMEOUT"),
  connectTimeout: durationConfig("REDIS_CONNECT_TIMEOUT")
}).pipe(
  Config.map((c) => ({
    url: Option.getOrUndefined(c.url),
    username: Option.getOrUndefined(c.username),
    password: Option.getOrUndefined(c.password),
    commandTimeout: Option.getOrUndefined(c.commandTimeout),
    connectTimeout: Option.getOrUndefined(c.connectTimeout)
  }))
)
