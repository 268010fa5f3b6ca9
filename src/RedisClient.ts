/**
 * The ioredis connection, configured so that no command can hang: no offline queue, no
 * re-send of unfulfilled commands after a reconnect, a deadline per command, a short connect
 * timeout and a background reconnect with capped backoff. Building it never fails because
 * Redis is down: the mode Layers decide what that means. The bodies live in
 * `internal/redis/client.ts`.
 *
 * @since 0.1.0
 */
import type * as Config from "effect/Config"
import type { ConfigError } from "effect/ConfigError"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import type * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import type { Cluster, Redis, RedisOptions } from "ioredis"
import * as internal from "./internal/redis/client.js"

/**
 * Options of the single-node client. Durations accept anything `Duration.decode` does
 * (`"300 millis"`, `Duration.seconds(1)`, a number of millis).
 *
 * @example
 * ```ts
 * import { Redacted } from "effect"
 * import type { RedisClientOptions } from "effect-failclosed"
 *
 * const options: RedisClientOptions = {
 *   url: "redis://cache.internal:6379/0",
 *   password: Redacted.make("from-a-secret-store"),
 *   commandTimeout: "250 millis",
 *   connectTimeout: "1 second"
 * }
 * ```
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
  /**
   * a cache operation that has not answered within this fails (default 300 millis); a command sent on `client`
   * directly is failed by ioredis 2 seconds later
   */
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
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { RedisClient, type RedisClientService } from "effect-failclosed"
 *
 * // for logs and health checks: where the client points, without credentials
 * const where = Effect.map(RedisClient, (redis: RedisClientService) => redis.description)
 * ```
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
 * The address of a cluster node or a sentinel: `"host:port"` (an IPv6 host in brackets, `"[::1]:7000"`) or
 * `{ host, port }`. Credentials never go here: use the `password` options.
 *
 * @example
 * ```ts
 * import { RedisClient } from "effect-failclosed"
 *
 * const ClusterLive = RedisClient.layerCluster({ nodes: ["10.0.0.1:7000", { host: "10.0.0.2", port: 7000 }] })
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export type RedisNodeAddress = string | { readonly host: string; readonly port: number }

/**
 * Options of the Redis Cluster client. The fail-fast settings of the single-node client apply to every node, and
 * the cluster's own retries are bounded: a command that meets a failover (a closed connection, `CLUSTERDOWN`,
 * `TRYAGAIN`) is retried at most `maxRedirections` times, `retryDelay` apart; a cache operation fails once its
 * `commandTimeout` has elapsed since the call, judged after the replies already received are read (a stall of this
 * process is not taken for an unavailable cluster).
 *
 * @example
 * ```ts
 * import { RedisClient } from "effect-failclosed"
 *
 * const ClusterLive = RedisClient.layerCluster({
 *   nodes: ["10.0.0.1:7000", "10.0.0.2:7000", "10.0.0.3:7000"],
 *   commandTimeout: "250 millis",
 *   maxRedirections: 4
 * })
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface RedisClusterOptions {
  /** startup nodes: any reachable subset of the cluster; the client discovers the rest (`CLUSTER SLOTS`) */
  readonly nodes: ReadonlyArray<RedisNodeAddress>
  /** ACL user of every node */
  readonly username?: string | undefined
  /** password of every node; never logged */
  readonly password?: string | Redacted.Redacted<string> | undefined
  /**
   * a cache operation that has not answered within this fails (default 300 millis); a command sent on `client`
   * directly is failed by ioredis 2 seconds later
   */
  readonly commandTimeout?: Duration.DurationInput | undefined
  /** TCP connect deadline (default 1 second) */
  readonly connectTimeout?: Duration.DurationInput | undefined
  /** cap of the backoff between attempts to reach the cluster when no node answers (default 500 millis) */
  readonly maxReconnectDelay?: Duration.DurationInput | undefined
  /** how long a mode Layer's startup probe waits for the cluster (default 2 seconds) */
  readonly startupTimeout?: Duration.DurationInput | undefined
  /** deadline of one `CLUSTER SLOTS` refresh against one node, connection included (default 500 millis) */
  readonly slotsRefreshTimeout?: Duration.DurationInput | undefined
  /**
   * how often the slot map is refreshed in the background (default 1 second). A paused (unresponsive) master sends
   * no `MOVED`, so this bounds how long the client keeps addressing it after its replica was promoted.
   */
  readonly slotsRefreshInterval?: Duration.DurationInput | undefined
  /** retries of one command on `MOVED`/`ASK`/a failover (default 6) */
  readonly maxRedirections?: number | undefined
  /** delay before a command is retried on a closed connection, `CLUSTERDOWN` or `TRYAGAIN` (default 50 millis) */
  readonly retryDelay?: Duration.DurationInput | undefined
  /** ioredis auto-pipelining, per node (default false) */
  readonly enableAutoPipelining?: boolean | undefined
  /** TLS options of every node (certificate verification stays on unless you turn it off) */
  readonly tls?: RedisOptions["tls"] | undefined
}

/**
 * Options of the Sentinel-managed client. The client asks the sentinels for the current master of `name`, connects
 * to it with the fail-fast settings of the single-node client, and reconnects to the new master after a failover (it
 * subscribes to the sentinels' `+switch-master`, so a master that hangs instead of dying is left too).
 *
 * @example
 * ```ts
 * import { Redacted } from "effect"
 * import { RedisClient } from "effect-failclosed"
 *
 * const SentinelLive = RedisClient.layerSentinel({
 *   sentinels: ["10.0.0.1:26379", "10.0.0.2:26379", "10.0.0.3:26379"],
 *   name: "cache",
 *   password: Redacted.make("from-a-secret-store")
 * })
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface RedisSentinelOptions {
  /** the sentinels to ask (any reachable subset; others they know of are added) */
  readonly sentinels: ReadonlyArray<RedisNodeAddress>
  /** the master group name the sentinels monitor */
  readonly name: string
  /** ACL user of the data nodes */
  readonly username?: string | undefined
  /** password of the data nodes; never logged */
  readonly password?: string | Redacted.Redacted<string> | undefined
  /** ACL user of the sentinels */
  readonly sentinelUsername?: string | undefined
  /** password of the sentinels; never logged */
  readonly sentinelPassword?: string | Redacted.Redacted<string> | undefined
  /** database number (default 0) */
  readonly db?: number | undefined
  /**
   * a cache operation that has not answered within this fails; also bounds each sentinel query (default 300 millis).
   * A command sent on `client` directly is failed by ioredis 2 seconds later.
   */
  readonly commandTimeout?: Duration.DurationInput | undefined
  /** TCP connect deadline, to the master and to each sentinel (default 1 second) */
  readonly connectTimeout?: Duration.DurationInput | undefined
  /** cap of the reconnect backoff, also between rounds over all sentinels (default 500 millis) */
  readonly maxReconnectDelay?: Duration.DurationInput | undefined
  /** how long a mode Layer's startup probe waits for a first connection (default 2 seconds) */
  readonly startupTimeout?: Duration.DurationInput | undefined
  /** ioredis auto-pipelining (default true) */
  readonly enableAutoPipelining?: boolean | undefined
  /** TLS options of the data nodes */
  readonly tls?: RedisOptions["tls"] | undefined
  /** TLS options of the sentinels */
  readonly sentinelTls?: RedisOptions["tls"] | undefined
}

/**
 * The Redis connection as a service, and its constructors: `layer`, `layerConfig`, `make` for a single node (or a
 * URL), the same with `Cluster` and `Sentinel` for the other topologies. Invalid options are a programmer error: a
 * synchronous `Error` when a Layer is made (a defect of `make`), before any connection; the `…Config` Layers fail with
 * a `ConfigError` that names the setting instead.
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
   * A Layer of the single-node client: `RedisClient.layer({ url, commandTimeout, … })`.
   *
   * @since 0.1.0
   */
  static readonly layer: (options?: RedisClientOptions) => Layer.Layer<RedisClient> = internal.layer
  /**
   * The single-node client in a scope; the connection is closed when the scope closes.
   *
   * @since 0.1.0
   */
  static readonly make: (options?: RedisClientOptions) => Effect.Effect<RedisClientService, never, Scope.Scope> =
    internal.make
  /**
   * Reads `REDIS_URL` and friends through `Config` (by default {@link RedisClientConfig}).
   *
   * @since 0.1.0
   */
  static readonly layerConfig: (config?: Config.Config<RedisClientOptions>) => Layer.Layer<RedisClient, ConfigError> =
    internal.layerConfig
  /**
   * A Layer of the Redis Cluster client: `RedisClient.layerCluster({ nodes, commandTimeout, … })`. Reads and writes
   * go to the master of the key's slot (never to a replica, whose data may lag).
   *
   * @since 0.1.0
   */
  static readonly layerCluster: (options: RedisClusterOptions) => Layer.Layer<RedisClient> = internal.layerCluster
  /**
   * The cluster client in a scope.
   *
   * @since 0.1.0
   */
  static readonly makeCluster: (options: RedisClusterOptions) => Effect.Effect<RedisClientService, never, Scope.Scope> =
    internal.makeCluster
  /**
   * Reads `REDIS_CLUSTER_NODES` and friends through `Config` (by default {@link RedisClusterConfig}).
   *
   * @since 0.1.0
   */
  static readonly layerClusterConfig: (
    config?: Config.Config<RedisClusterOptions>
  ) => Layer.Layer<RedisClient, ConfigError> = internal.layerClusterConfig
  /**
   * A Layer of the Sentinel-managed client: `RedisClient.layerSentinel({ sentinels, name, … })`.
   *
   * @since 0.1.0
   */
  static readonly layerSentinel: (options: RedisSentinelOptions) => Layer.Layer<RedisClient> = internal.layerSentinel
  /**
   * The Sentinel-managed client in a scope.
   *
   * @since 0.1.0
   */
  static readonly makeSentinel: (
    options: RedisSentinelOptions
  ) => Effect.Effect<RedisClientService, never, Scope.Scope> = internal.makeSentinel
  /**
   * Reads `REDIS_SENTINELS`, `REDIS_SENTINEL_NAME` and friends through `Config` (by default
   * {@link RedisSentinelConfig}).
   *
   * @since 0.1.0
   */
  static readonly layerSentinelConfig: (
    config?: Config.Config<RedisSentinelOptions>
  ) => Layer.Layer<RedisClient, ConfigError> = internal.layerSentinelConfig
}

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
export const RedisClientConfig: Config.Config<RedisClientOptions> = internal.clientConfig

/**
 * The default `Config` of {@link layerClusterConfig}: `REDIS_CLUSTER_NODES` (comma-separated `host:port`, required),
 * `REDIS_USERNAME`, `REDIS_PASSWORD` (redacted), `REDIS_COMMAND_TIMEOUT`, `REDIS_CONNECT_TIMEOUT`.
 *
 * @example
 * ```ts
 * import { RedisClient } from "effect-failclosed"
 *
 * // REDIS_CLUSTER_NODES=10.0.0.1:7000,10.0.0.2:7000 REDIS_PASSWORD=… (RedisClusterConfig is the default)
 * const ClusterLive = RedisClient.layerClusterConfig()
 * ```
 *
 * @since 0.1.0
 * @category config
 */
export const RedisClusterConfig: Config.Config<RedisClusterOptions> = internal.clusterConfig

/**
 * The default `Config` of {@link layerSentinelConfig}: `REDIS_SENTINELS` (comma-separated `host:port`, required),
 * `REDIS_SENTINEL_NAME` (the master group, required), `REDIS_USERNAME`, `REDIS_PASSWORD` (redacted),
 * `REDIS_SENTINEL_PASSWORD` (redacted), `REDIS_COMMAND_TIMEOUT`, `REDIS_CONNECT_TIMEOUT`.
 *
 * @example
 * ```ts
 * import { RedisClient } from "effect-failclosed"
 *
 * // REDIS_SENTINELS=10.0.0.1:26379 REDIS_SENTINEL_NAME=cache (RedisSentinelConfig is the default)
 * const SentinelLive = RedisClient.layerSentinelConfig()
 * ```
 *
 * @since 0.1.0
 * @category config
 */
export const RedisSentinelConfig: Config.Config<RedisSentinelOptions> = internal.sentinelConfig
