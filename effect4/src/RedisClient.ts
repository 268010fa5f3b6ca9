/**
 * The Redis connection of the Effect 4 line: an ioredis client opened by the core with its fail-fast options (no
 * offline queue, no retried commands, bounded connects: a dead, paused or black-holed Redis never makes a call
 * hang), in a Layer that closes it. Building it never fails because Redis is down; the mode Layers decide what that
 * means. The same names and options as `effect-failclosed`'s `RedisClient` (single node; Cluster and Sentinel are
 * not in the Effect 4 line yet).
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import type * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import type { Cluster, Redis, RedisOptions } from "ioredis"
import * as internal from "./internal/redisClient.js"

/**
 * The options of {@link RedisClient.layer}.
 *
 * @example
 * ```ts
 * import type { RedisClientOptions } from "effect-failclosed-effect4"
 *
 * const options: RedisClientOptions = { url: "redis://127.0.0.1:6380", commandTimeout: "300 millis" }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface RedisClientOptions {
  /** `redis://` or `rediss://` (default `redis://127.0.0.1:6379`); a password in it never reaches a log or error */
  readonly url?: string | Redacted.Redacted<string> | undefined
  readonly username?: string | undefined
  readonly password?: string | Redacted.Redacted<string> | undefined
  /** a command that does not answer within it is unavailable (default 300 millis) */
  readonly commandTimeout?: Duration.Input | undefined
  /** default 1 second */
  readonly connectTimeout?: Duration.Input | undefined
  /** the longest wait between two reconnection attempts (default 2 seconds) */
  readonly maxReconnectDelay?: Duration.Input | undefined
  /** how long a mode Layer waits for the first connection (default 2 seconds) */
  readonly startupTimeout?: Duration.Input | undefined
  readonly enableAutoPipelining?: boolean | undefined
  readonly tls?: RedisOptions["tls"] | undefined
}

/**
 * The connection as the modes use it.
 *
 * @since 0.1.0
 * @category models
 */
export interface RedisClientService {
  readonly client: Redis | Cluster
  readonly commandTimeout: Duration.Duration
  readonly startupTimeout: Duration.Duration
  /** where it connects, without a password */
  readonly description: string
  /** succeeds once connected; fails with a secret-free reason after `timeout` or on a permanent error */
  readonly awaitReady: (timeout: Duration.Duration) => Effect.Effect<void, string>
  /** a secret-free description of a driver error */
  readonly describeError: (error: unknown) => string
}

/**
 * The Redis connection service (a `Context.Service`).
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { RedisClient, StrictDistributed } from "effect-failclosed-effect4"
 *
 * const cache = StrictDistributed.pipe(Layer.provide(RedisClient.layer({ url: "redis://127.0.0.1:6380" })))
 * const fromEnvironment = StrictDistributed.pipe(Layer.provide(RedisClient.layerConfig()))
 * ```
 *
 * @since 0.1.0
 * @category services
 */
export class RedisClient extends Context.Service<RedisClient, RedisClientService>()("effect-failclosed/RedisClient") {
  /**
   * A Layer that opens the connection and closes it with its scope. Invalid options are a synchronous `Error`.
   *
   * @since 0.1.0
   */
  static readonly layer: (options?: RedisClientOptions) => Layer.Layer<RedisClient> = (options) =>
    internal.layer(RedisClient, options)
  /**
   * Opens the connection in a scope.
   *
   * @since 0.1.0
   */
  static readonly make: (options?: RedisClientOptions) => Effect.Effect<RedisClientService, never, Scope.Scope> =
    internal.make
  /**
   * A Layer that reads its options through Effect `Config` (`REDIS_URL`, `REDIS_USERNAME`, `REDIS_PASSWORD`
   * redacted, `REDIS_COMMAND_TIMEOUT`, `REDIS_CONNECT_TIMEOUT`): an invalid value is a `ConfigError`.
   *
   * @since 0.1.0
   */
  static readonly layerConfig: (
    config?: Config.Config<RedisClientOptions>
  ) => Layer.Layer<RedisClient, Config.ConfigError> = (config) => internal.layerConfig(RedisClient, config)
}

/**
 * The options read from the environment by {@link RedisClient.layerConfig}.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { RedisClientConfig } from "effect-failclosed-effect4"
 *
 * const options = Effect.gen(function* () {
 *   return yield* RedisClientConfig
 * })
 * ```
 *
 * @since 0.1.0
 * @category config
 */
export const RedisClientConfig: Config.Config<RedisClientOptions> = internal.clientConfig
