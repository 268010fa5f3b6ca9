/**
 * The ioredis connection, configured so that no command can hang: no offline queue, no
 * re-send of unfulfilled commands after a reconnect, a per-command timeout, a short connect
 * timeout and a background reconnect with capped backoff. Building it never fails because
 * Redis is down: the mode Layers decide what that means.
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import type { ConfigError } from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import { Redis, type Cluster, type RedisOptions } from "ioredis"
import { makeSecretScrubber } from "./internal/redact.js"

/**
 * Options of the single-node client. Durations accept anything `Duration.decode` does
 * (`"300 millis"`, `Duration.seconds(1)`, a number of millis).
 *
 * @since 0.1.0
 * @category models
 */
export interface RedisClientOptions {
  /** `redis://[user:password@]host:port[/db]` or `rediss://…` for TLS. Default `redis://127.0.0.1:6379`. */
  readonly url?: string | Redacted.Redacted<string> | undefined
  /** overrides the URL's username (ACL user) */
  readonly username?: string | undefined
  /** overrides the URL's password; never logged */
  readonly password?: string | Redacted.Redacted<string> | undefined
  /** a command that has not answered within this is failed (default 300 millis) */
  readonly commandTimeout?: Duration.DurationInput | undefined
  /** TCP connect deadline (default 1 second) */
  readonly connectTimeout?: Duration.DurationInput | undefined
  /** cap of the reconnect backoff (default 500 millis) */
  readonly maxReconnectDelay?: Duration.DurationInput | undefined
  /** how long a mode Layer's startup probe waits for a first connection (default 2 seconds) */
  readonly startupTimeout?: Duration.DurationInput | undefined
  /** ioredis auto-pipelining (default true) */
  readonly enableAutoPipelining?: boolean | undefined
  /** TLS options for `rediss://` (certificate verification stays on unless you turn it off) */
  readonly tls?: RedisOptions["tls"] | undefined
}

/**
 * The connection service used by `StrictDistributed` and `ExplicitDegraded`.
 *
 * @since 0.1.0
 * @category models
 */
export interface RedisClientService {
  /** the ioredis client (a single node, a Sentinel-managed node, or a Cluster) */
  readonly client: Redis | Cluster
  readonly commandTimeout: Duration.Duration
  readonly startupTimeout: Duration.Duration
  /** `host:port`, without credentials */
  readonly description: string
  /** succeeds once the client is connected and ready, or fails with a secret-free reason */
  readonly awaitReady: (timeout: Duration.Duration) => Effect.Effect<void, string>
  /** turns any error of this client into a short reason that never contains a secret */
  readonly describeError: (error: unknown) => string
}

/**
 * The Redis connection as a service.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { RedisClient } from "effect-failclosed"
 *
 * const program = Effect.gen(function* () {
 *   const redis = yield* RedisClient
 *   return redis.description
 * }).pipe(Effect.provide(RedisClient.layer({ url: "redis://127.0.0.1:6379" })))
 * ```
 *
 * @since 0.1.0
 * @category tags
 */
export class RedisClient extends Context.Tag("effect-failclosed/RedisClient")<RedisClient, RedisClientService>() {
  /**
   * Same as the module's {@link layer}: `RedisClient.layer({ url, commandTimeout, … })`.
   *
   * @since 0.1.0
   */
  static layer(options?: RedisClientOptions): Layer.Layer<RedisClient> {
    return layer(options)
  }
  /**
   * Same as the module's {@link make}: the client in a scope.
   *
   * @since 0.1.0
   */
  static make(options?: RedisClientOptions): Effect.Effect<RedisClientService, never, Scope.Scope> {
    return make(options)
  }
  /**
   * Same as the module's {@link layerConfig}: reads `REDIS_URL` and friends through `Config`.
   *
   * @since 0.1.0
   */
  static layerConfig(config?: Config.Config<RedisClientOptions>): Layer.Layer<RedisClient, ConfigError> {
    return layerConfig(config)
  }
}

const DEFAULT_URL = "redis://127.0.0.1:6379"

const reveal = (u: string | Redacted.Redacted<string> | undefined): string | undefined =>
  u === undefined ? undefined : Redacted.isRedacted(u) ? Redacted.value(u) : u

const describeUrl = (url: string): string => {
  try {
    const parsed = new URL(url)
    return `${parsed.hostname}:${parsed.port || "6379"}`
  } catch {
    return "(unparseable url)"
  }
}

/** @internal */
export const failFastOptions = (o: {
  readonly commandTimeout: Duration.Duration
  readonly connectTimeout: Duration.Duration
  readonly maxReconnectDelay: Duration.Duration
  readonly enableAutoPipelining: boolean
}): RedisOptions => {
  const cap = Duration.toMillis(o.maxReconnectDelay)
  return {
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 0,
    commandTimeout: Duration.toMillis(o.commandTimeout),
    connectTimeout: Duration.toMillis(o.connectTimeout),
    retryStrategy: (times) => Math.min(25 * 2 ** Math.min(times, 10), cap),
    // a failed ready check must not wait forever either
    enableReadyCheck: true,
    enableAutoPipelining: o.enableAutoPipelining,
    lazyConnect: false
  }
}

/** @internal */
export const positiveDuration = (
  name: string,
  input: Duration.DurationInput | undefined,
  fallback: Duration.DurationInput
) => {
  const d = Duration.decodeUnknown(input ?? fallback)
  if (Option.isNone(d) || !Duration.isFinite(d.value) || Duration.toMillis(d.value) <= 0) {
    throw new Error(`effect-failclosed: ${name} must be a positive, finite duration`)
  }
  return d.value
}

/** @internal */
export const awaitReadyOf =
  (client: Redis | Cluster, describeError: (e: unknown) => string) =>
  (timeout: Duration.Duration): Effect.Effect<void, string> =>
    Effect.async<void, string>((resume) => {
      if (client.status === "ready") return resume(Effect.void)
      let lastError = "not connected"
      const onReady = () => {
        cleanup()
        resume(Effect.void)
      }
      const onError = (e: unknown) => {
        lastError = describeError(e)
      }
      const timer = setTimeout(() => {
        cleanup()
        resume(Effect.fail(`no connection within ${Duration.format(timeout)} (${lastError})`))
      }, Duration.toMillis(timeout))
      const cleanup = () => {
        clearTimeout(timer)
        client.off("ready", onReady)
        client.off("error", onError)
      }
      client.on("ready", onReady)
      client.on("error", onError)
      return Effect.sync(cleanup)
    })

/**
 * Builds the client in a scope; the connection is closed when the scope closes. Invalid
 * options are a programmer error: a synchronous `Error` (a defect), before any connection.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { RedisClient } from "effect-failclosed"
 *
 * const program = Effect.scoped(
 *   Effect.map(RedisClient.make({ commandTimeout: "200 millis" }), (redis) => redis.client.status)
 * )
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: RedisClientOptions = {}): Effect.Effect<RedisClientService, never, Scope.Scope> =>
  Effect.suspend(() => {
    const commandTimeout = positiveDuration("commandTimeout", options.commandTimeout, "300 millis")
    const connectTimeout = positiveDuration("connectTimeout", options.connectTimeout, "1 second")
    const maxReconnectDelay = positiveDuration("maxReconnectDelay", options.maxReconnectDelay, "500 millis")
    const startupTimeout = positiveDuration("startupTimeout", options.startupTimeout, "2 seconds")
    const url = reveal(options.url) ?? DEFAULT_URL
    if (!/^rediss?:\/\//.test(url)) {
      throw new Error("effect-failclosed: RedisClient url must start with redis:// or rediss://")
    }
    const password = reveal(options.password)
    const describeError = makeSecretScrubber([password, safeUrlPassword(url), url])
    const redisOptions: RedisOptions = {
      ...failFastOptions({
        commandTimeout,
        connectTimeout,
        maxReconnectDelay,
        enableAutoPipelining: options.enableAutoPipelining ?? true
      }),
      ...(options.username !== undefined ? { username: options.username } : {}),
      ...(password !== undefined ? { password } : {}),
      ...(options.tls !== undefined ? { tls: options.tls } : {})
    }
    return Effect.map(
      Effect.acquireRelease(
        Effect.sync(() => {
          const client = new Redis(url, redisOptions)
          // ioredis prints unhandled "error" events to the console; failures reach callers
          // as typed errors instead.
          client.on("error", () => {})
          return client
        }),
        (client) => Effect.sync(() => client.disconnect(false))
      ),
      (client): RedisClientService => ({
        client,
        commandTimeout,
        startupTimeout,
        description: describeUrl(url),
        awaitReady: awaitReadyOf(client, describeError),
        describeError
      })
    )
  })

const safeUrlPassword = (url: string): string | undefined => {
  try {
    const p = new URL(url).password
    return p === "" ? undefined : decodeURIComponent(p)
  } catch {
    return undefined
  }
}

/**
 * A Layer of the single-node client.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { ExplicitDegraded, RedisClient, StrictDistributed } from "effect-failclosed"
 *
 * const CacheLive = StrictDistributed.pipe(
 *   Layer.provide(RedisClient.layer({ url: "redis://127.0.0.1:6379", commandTimeout: "250 millis" }))
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: RedisClientOptions = {}): Layer.Layer<RedisClient> =>
  Layer.scoped(RedisClient, make(options))

/**
 * Reads the connection settings through Effect `Config`: `REDIS_URL` (redacted: it may hold a
 * password), `REDIS_USERNAME`, `REDIS_PASSWORD` (redacted), `REDIS_COMMAND_TIMEOUT`,
 * `REDIS_CONNECT_TIMEOUT` (durations such as `"300 millis"`). All are optional.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { ExplicitDegraded, RedisClient, StrictDistributed } from "effect-failclosed"
 *
 * const CacheLive = ExplicitDegraded.pipe(Layer.provide(RedisClient.layerConfig()))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config<RedisClientOptions> = RedisClientConfig
): Layer.Layer<RedisClient, ConfigError> => Layer.scoped(RedisClient, Effect.flatMap(config, make))

/**
 * The default `Config` of {@link layerConfig}.
 *
 * @example
 * ```ts
 * import { Config } from "effect"
 * import { RedisClientConfig } from "effect-failclosed"
 *
 * const nested = Config.nested(RedisClientConfig, "CACHE")
 * ```
 *
 * @since 0.1.0
 * @category config
 */
export const RedisClientConfig: Config.Config<RedisClientOptions> = Config.all({
  url: Config.option(Config.redacted("REDIS_URL")),
  username: Config.option(Config.string("REDIS_USERNAME")),
  password: Config.option(Config.redacted("REDIS_PASSWORD")),
  commandTimeout: Config.option(Config.duration("REDIS_COMMAND_TIMEOUT")),
  connectTimeout: Config.option(Config.duration("REDIS_CONNECT_TIMEOUT"))
}).pipe(
  Config.map((c) => ({
    url: Option.getOrUndefined(c.url),
    username: Option.getOrUndefined(c.username),
    password: Option.getOrUndefined(c.password),
    commandTimeout: Option.getOrUndefined(c.commandTimeout),
    connectTimeout: Option.getOrUndefined(c.connectTimeout)
  }))
)
