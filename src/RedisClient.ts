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
import { Cluster as IORedisCluster, type ClusterOptions } from "ioredis"
import { makeSecretScrubber } from "./internal/redact.js"

import { optionChecks } from "./internal/options.js"
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
  /**
   * Same as the module's {@link layerCluster}: `RedisClient.layerCluster({ nodes, commandTimeout, … })`.
   *
   * @since 0.1.0
   */
  static layerCluster(options: RedisClusterOptions): Layer.Layer<RedisClient> {
    return layerCluster(options)
  }
  /**
   * Same as the module's {@link makeCluster}: the cluster client in a scope.
   *
   * @since 0.1.0
   */
  static makeCluster(options: RedisClusterOptions): Effect.Effect<RedisClientService, never, Scope.Scope> {
    return makeCluster(options)
  }
  /**
   * Same as the module's {@link layerClusterConfig}: reads `REDIS_CLUSTER_NODES` and friends through `Config`.
   *
   * @since 0.1.0
   */
  static layerClusterConfig(config?: Config.Config<RedisClusterOptions>): Layer.Layer<RedisClient, ConfigError> {
    return layerClusterConfig(config)
  }
  /**
   * Same as the module's {@link layerSentinel}: `RedisClient.layerSentinel({ sentinels, name, … })`.
   *
   * @since 0.1.0
   */
  static layerSentinel(options: RedisSentinelOptions): Layer.Layer<RedisClient> {
    return layerSentinel(options)
  }
  /**
   * Same as the module's {@link makeSentinel}: the Sentinel-managed client in a scope.
   *
   * @since 0.1.0
   */
  static makeSentinel(options: RedisSentinelOptions): Effect.Effect<RedisClientService, never, Scope.Scope> {
    return makeSentinel(options)
  }
  /**
   * Same as the module's {@link layerSentinelConfig}: reads `REDIS_SENTINELS`, `REDIS_SENTINEL_NAME` and friends
   * through `Config`.
   *
   * @since 0.1.0
   */
  static layerSentinelConfig(config?: Config.Config<RedisSentinelOptions>): Layer.Layer<RedisClient, ConfigError> {
    return layerSentinelConfig(config)
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
    // closing waits this long at most for Redis to acknowledge, then destroys the socket (a paused Redis never does)
    disconnectTimeout: Math.min(Duration.toMillis(o.connectTimeout), 500),
    // a failed ready check must not wait forever either
    enableReadyCheck: true,
    enableAutoPipelining: o.enableAutoPipelining,
    lazyConnect: false
  }
}

/**
 * How much later than `commandTimeout` ioredis' own per-command timer fails a command of the library's clients. The
 * store bounds every call by `commandTimeout` itself, judged after the replies already received are read; ioredis'
 * timer cannot wait for them (after a stall of this process it fires first and discards a reply that is already in
 * the socket), so it is only a backstop, for commands sent on `client` directly.
 */
const COMMAND_BACKSTOP_MILLIS = 2_000

const backstopMillis = (commandTimeout: Duration.Duration): number =>
  Duration.toMillis(commandTimeout) + COMMAND_BACKSTOP_MILLIS

const check = optionChecks("RedisClient")

/** @internal */
export const positiveDuration = (
  name: string,
  input: Duration.DurationInput | undefined,
  fallback: Duration.DurationInput
): Duration.Duration => Duration.millis(check.duration(name, input, "timeout", fallback))

const PERMANENT_STARTUP_ERROR =
  /WRONGPASS|NOAUTH|NOPERM|certificate|self[- ]signed|unable to verify|CERT_|ERR_TLS|wrong version number/i

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
        // waiting cannot fix a wrong password, a missing ACL permission or an untrusted certificate
        if (PERMANENT_STARTUP_ERROR.test(lastError)) {
          cleanup()
          resume(Effect.fail(lastError))
        }
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
 * Disconnects without reconnecting and closes the socket at once (commands still in flight fail; a paused Redis
 * would never acknowledge a graceful close), then waits for ioredis to report the end, so that no socket or timer
 * outlives the scope.
 * @internal
 */
export const closeClient = (client: Redis | Cluster): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    client.disconnect(false)
    // "reconnecting": no socket, and disconnect cleared the reconnect timer; "wait" turns into "end" at once
    if (client.status === "end" || client.status === "reconnecting" || client.status === "close") {
      return resume(Effect.void)
    }
    const done = () => {
      clearTimeout(timer)
      client.off("end", done)
      resume(Effect.void)
    }
    // a safety net only: ioredis emits "end" once the socket is closed
    const timer = setTimeout(done, 2_000)
    client.once("end", done)
    if (client instanceof Redis) client.stream?.destroy()
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
      commandTimeout: backstopMillis(commandTimeout),
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
        (client) => closeClient(client)
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
export const layer = (options: RedisClientOptions = {}): Layer.Layer<RedisClient> => {
  validateOptions(options)
  return Layer.scoped(RedisClient, make(options))
}

/** invalid options are a programmer error: thrown when the Layer is made, before any connection */
const validateOptions = (options: RedisClientOptions): void => {
  positiveDuration("commandTimeout", options.commandTimeout, "300 millis")
  positiveDuration("connectTimeout", options.connectTimeout, "1 second")
  positiveDuration("maxReconnectDelay", options.maxReconnectDelay, "500 millis")
  positiveDuration("startupTimeout", options.startupTimeout, "2 seconds")
  if (!/^rediss?:\/\//.test(reveal(options.url) ?? DEFAULT_URL)) {
    throw new Error("effect-failclosed: RedisClient url must start with redis:// or rediss://")
  }
}

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

// ---------------------------------------------------------------------------------------------------------------------
// Redis Cluster and Sentinel
// ---------------------------------------------------------------------------------------------------------------------

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

const parseNodeAddress = (what: string, index: number, node: RedisNodeAddress): { host: string; port: number } => {
  let host: string
  let port: number
  if (typeof node === "string") {
    const colon = node.lastIndexOf(":")
    host = colon > 0 ? node.slice(0, colon) : ""
    port = colon > 0 && /^\d{1,5}$/.test(node.slice(colon + 1)) ? Number(node.slice(colon + 1)) : NaN
    if (host.startsWith("[") && host.endsWith("]")) host = host.slice(1, -1)
  } else if (typeof node === "object" && node !== null) {
    host = node.host
    port = node.port
  } else {
    host = ""
    port = NaN
  }
  // the address is not echoed: a URL with credentials pasted here must not end up in a log
  if (typeof host !== "string" || host.length === 0 || /[/@\s]/.test(host)) {
    throw new Error(`effect-failclosed: ${what}[${index}] must be "host:port" or { host, port } (bad host)`)
  }
  if (!Number.isInteger(port) || port <= 0 || port > 65_535) {
    throw new Error(`effect-failclosed: ${what}[${index}] must be "host:port" or { host, port } (bad port)`)
  }
  return { host, port }
}

const parseNodeAddresses = (what: string, nodes: ReadonlyArray<RedisNodeAddress> | undefined) => {
  if (!Array.isArray(nodes) || nodes.length === 0) {
    throw new Error(`effect-failclosed: ${what} must list at least one "host:port"`)
  }
  return nodes.map((node, i) => parseNodeAddress(what, i, node))
}

const describeNodes = (nodes: ReadonlyArray<{ host: string; port: number }>): string =>
  nodes.map((n) => (n.host.includes(":") ? `[${n.host}]:${n.port}` : `${n.host}:${n.port}`)).join(",")

const cappedBackoff = (cap: Duration.Duration) => {
  const capMillis = Duration.toMillis(cap)
  return (times: number) => Math.min(25 * 2 ** Math.min(times, 10), capMillis)
}

const nonNegativeInteger = (name: string, value: number | undefined, fallback: number): number => {
  const v = value ?? fallback
  if (!Number.isSafeInteger(v) || v < 0) throw new Error(`effect-failclosed: ${name} must be a non-negative integer`)
  return v
}

const ignoreEvent = () => {}

/**
 * Closes a cluster client and waits until every node connection is closed. A cluster that is between two attempts
 * to reach its nodes has no connection left: then there is nothing to wait for.
 */
const closeCluster = (client: Cluster): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    const before = client.status
    const hadNodes = client.nodes("all").length > 0
    client.disconnect(false)
    if (before === "end" || before === "close" || before === "wait" || !hadNodes) return resume(Effect.void)
    const done = () => {
      clearTimeout(timer)
      client.off("end", done)
      resume(Effect.void)
    }
    // a safety net only: every node connection is destroyed after its disconnectTimeout
    const timer = setTimeout(done, 2_000)
    client.once("end", done)
  })

/** the validated settings of a cluster client: an invalid option throws (a programmer error) */
const clusterSettings = (options: RedisClusterOptions) => ({
  nodes: parseNodeAddresses("RedisClient cluster nodes", options.nodes),
  commandTimeout: positiveDuration("commandTimeout", options.commandTimeout, "300 millis"),
  connectTimeout: positiveDuration("connectTimeout", options.connectTimeout, "1 second"),
  maxReconnectDelay: positiveDuration("maxReconnectDelay", options.maxReconnectDelay, "500 millis"),
  startupTimeout: positiveDuration("startupTimeout", options.startupTimeout, "2 seconds"),
  slotsRefreshTimeout: positiveDuration("slotsRefreshTimeout", options.slotsRefreshTimeout, "500 millis"),
  slotsRefreshInterval: positiveDuration("slotsRefreshInterval", options.slotsRefreshInterval, "1 second"),
  retryDelay: positiveDuration("retryDelay", options.retryDelay, "50 millis"),
  maxRedirections: nonNegativeInteger("maxRedirections", options.maxRedirections, 6)
})

/**
 * Builds a Redis Cluster client in a scope; the connections are closed when the scope closes. Reads and writes go
 * to the master of the key's slot (never to a replica, whose data may lag). Invalid options are a programmer
 * error: a synchronous `Error` (a defect), before any connection.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { RedisClient } from "effect-failclosed"
 *
 * const program = Effect.scoped(
 *   Effect.map(RedisClient.makeCluster({ nodes: ["127.0.0.1:7000"] }), (redis) => redis.description)
 * )
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeCluster = (options: RedisClusterOptions): Effect.Effect<RedisClientService, never, Scope.Scope> =>
  Effect.suspend(() => {
    const {
      commandTimeout,
      connectTimeout,
      maxReconnectDelay,
      maxRedirections,
      nodes,
      retryDelay,
      slotsRefreshInterval,
      slotsRefreshTimeout,
      startupTimeout
    } = clusterSettings(options)
    const password = reveal(options.password)
    const describeError = makeSecretScrubber([password])
    const enableAutoPipelining = options.enableAutoPipelining ?? false
    // Per node: the single-node fail-fast settings. ioredis itself keeps a per-node offline queue while a node
    // connection is being opened and never reconnects a lost node (it refreshes the slot map instead); the
    // cluster-level `enableOfflineQueue: false` below makes a command to a node that is not connected fail at once.
    // ioredis' own per-command timer is a backstop, later than the store's deadline (see COMMAND_BACKSTOP_MILLIS).
    const redisOptions: RedisOptions = {
      ...failFastOptions({ commandTimeout, connectTimeout, maxReconnectDelay, enableAutoPipelining }),
      commandTimeout: backstopMillis(commandTimeout),
      ...(options.username !== undefined ? { username: options.username } : {}),
      ...(password !== undefined ? { password } : {}),
      ...(options.tls !== undefined ? { tls: options.tls } : {})
    }
    const clusterOptions: ClusterOptions = {
      redisOptions,
      enableOfflineQueue: false,
      enableReadyCheck: true,
      scaleReads: "master",
      clusterRetryStrategy: cappedBackoff(maxReconnectDelay),
      maxRedirections,
      retryDelayOnFailover: Duration.toMillis(retryDelay),
      retryDelayOnClusterDown: Duration.toMillis(retryDelay),
      retryDelayOnTryAgain: Duration.toMillis(retryDelay),
      retryDelayOnMoved: 0,
      slotsRefreshTimeout: Duration.toMillis(slotsRefreshTimeout),
      slotsRefreshInterval: Duration.toMillis(slotsRefreshInterval),
      enableAutoPipelining,
      lazyConnect: false
    }
    return Effect.map(
      Effect.acquireRelease(
        Effect.sync(() => {
          const client = new IORedisCluster(nodes, clusterOptions)
          // failures reach callers as typed errors; unhandled "error" events would only be printed
          client.on("error", ignoreEvent)
          client.on("node error", ignoreEvent)
          return client
        }),
        closeCluster
      ),
      (client): RedisClientService => ({
        client,
        commandTimeout,
        startupTimeout,
        description: `cluster ${describeNodes(nodes)}`,
        awaitReady: awaitReadyOf(client, describeError),
        describeError
      })
    )
  })

/**
 * A Layer of the Redis Cluster client.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { RedisClient, StrictDistributed } from "effect-failclosed"
 *
 * const CacheLive = StrictDistributed.pipe(
 *   Layer.provide(RedisClient.layerCluster({ nodes: ["10.0.0.1:7000", "10.0.0.2:7000", "10.0.0.3:7000"] }))
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerCluster = (options: RedisClusterOptions): Layer.Layer<RedisClient> => {
  // invalid options throw here, when the Layer is made, before any connection
  clusterSettings(options)
  return Layer.scoped(RedisClient, makeCluster(options))
}

/** the validated settings of a Sentinel-managed client: an invalid option throws (a programmer error) */
const sentinelSettings = (options: RedisSentinelOptions) => {
  const name = options.name
  if (typeof name !== "string" || name.length === 0) {
    throw new Error("effect-failclosed: RedisClient sentinel name (the master group) must be a non-empty string")
  }
  return {
    sentinels: parseNodeAddresses("RedisClient sentinels", options.sentinels),
    name,
    commandTimeout: positiveDuration("commandTimeout", options.commandTimeout, "300 millis"),
    connectTimeout: positiveDuration("connectTimeout", options.connectTimeout, "1 second"),
    maxReconnectDelay: positiveDuration("maxReconnectDelay", options.maxReconnectDelay, "500 millis"),
    startupTimeout: positiveDuration("startupTimeout", options.startupTimeout, "2 seconds"),
    db: nonNegativeInteger("db", options.db, 0)
  }
}

/**
 * Builds a Sentinel-managed client in a scope; the connection is closed when the scope closes. Invalid options are
 * a programmer error: a synchronous `Error` (a defect), before any connection.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { RedisClient } from "effect-failclosed"
 *
 * const program = Effect.scoped(
 *   Effect.map(
 *     RedisClient.makeSentinel({ sentinels: ["127.0.0.1:26379"], name: "cache" }),
 *     (redis) => redis.description
 *   )
 * )
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeSentinel = (options: RedisSentinelOptions): Effect.Effect<RedisClientService, never, Scope.Scope> =>
  Effect.suspend(() => {
    const { commandTimeout, connectTimeout, db, maxReconnectDelay, name, sentinels, startupTimeout } =
      sentinelSettings(options)
    const password = reveal(options.password)
    const sentinelPassword = reveal(options.sentinelPassword)
    const describeError = makeSecretScrubber([password, sentinelPassword])
    const backoff = cappedBackoff(maxReconnectDelay)
    const redisOptions: RedisOptions = {
      ...failFastOptions({
        commandTimeout,
        connectTimeout,
        maxReconnectDelay,
        enableAutoPipelining: options.enableAutoPipelining ?? true
      }),
      commandTimeout: backstopMillis(commandTimeout),
      sentinels,
      name,
      role: "master",
      db,
      // never give up: a connector that returns no delay ends the client for good. Each round asks every
      // sentinel, each question bounded by connectTimeout and sentinelCommandTimeout.
      sentinelRetryStrategy: backoff,
      // the failover detector's subscriptions come back when a sentinel does; ioredis prints every failed attempt
      // of these connections (they have no error listener), so they retry at most every 5 seconds
      sentinelReconnectStrategy: (times: number) => Math.min(100 * 2 ** Math.min(times, 10), 5_000),
      sentinelCommandTimeout: Duration.toMillis(commandTimeout),
      // leave a master as soon as the sentinels announce +switch-master: a paused master closes no connection
      failoverDetector: true,
      updateSentinels: true,
      ...(options.username !== undefined ? { username: options.username } : {}),
      ...(password !== undefined ? { password } : {}),
      ...(options.sentinelUsername !== undefined ? { sentinelUsername: options.sentinelUsername } : {}),
      ...(sentinelPassword !== undefined ? { sentinelPassword } : {}),
      ...(options.tls !== undefined ? { tls: options.tls, enableTLSForSentinelMode: true } : {}),
      ...(options.sentinelTls !== undefined ? { sentinelTLS: options.sentinelTls } : {})
    }
    return Effect.map(
      Effect.acquireRelease(
        Effect.sync(() => {
          const client = new Redis(redisOptions)
          client.on("error", ignoreEvent)
          return { client, revival: reviveWhenEnded(client, maxReconnectDelay) }
        }),
        ({ client, revival }) => Effect.zipRight(Effect.sync(revival.stop), closeClient(client))
      ),
      ({ client }): RedisClientService => ({
        client,
        commandTimeout,
        startupTimeout,
        description: `sentinel master "${name}" via ${describeNodes(sentinels)}`,
        awaitReady: awaitReadyOf(client, describeError),
        describeError
      })
    )
  })

/**
 * ioredis ends a Sentinel client for good when its failover detector (on `+switch-master`) closes the connector while
 * a connection attempt is under way: the attempt then fails with "Connection is closed." and the client never
 * reconnects. Until the client is closed by its scope, an end that nobody asked for starts a new connection, after
 * a capped backoff.
 */
const reviveWhenEnded = (client: Redis, maxDelay: Duration.Duration) => {
  const backoff = cappedBackoff(maxDelay)
  let stopped = false
  let attempts = 0
  let timer: ReturnType<typeof setTimeout> | undefined
  const onReady = () => {
    attempts = 0
  }
  const onEnd = () => {
    if (stopped || timer !== undefined) return
    timer = setTimeout(() => {
      timer = undefined
      if (!stopped && client.status === "end") client.connect().catch(ignoreEvent)
    }, backoff(++attempts))
  }
  client.on("ready", onReady)
  client.on("end", onEnd)
  return {
    stop: () => {
      stopped = true
      if (timer !== undefined) clearTimeout(timer)
      client.off("ready", onReady)
      client.off("end", onEnd)
    }
  }
}

/**
 * A Layer of the Sentinel-managed client.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { RedisClient, StrictDistributed } from "effect-failclosed"
 *
 * const CacheLive = StrictDistributed.pipe(
 *   Layer.provide(RedisClient.layerSentinel({ sentinels: ["10.0.0.1:26379", "10.0.0.2:26379"], name: "cache" }))
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerSentinel = (options: RedisSentinelOptions): Layer.Layer<RedisClient> => {
  // invalid options throw here, when the Layer is made, before any connection
  sentinelSettings(options)
  return Layer.scoped(RedisClient, makeSentinel(options))
}

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
export const RedisClusterConfig: Config.Config<RedisClusterOptions> = Config.all({
  nodes: Config.array(Config.string(), "REDIS_CLUSTER_NODES"),
  username: Config.option(Config.string("REDIS_USERNAME")),
  password: Config.option(Config.redacted("REDIS_PASSWORD")),
  commandTimeout: Config.option(Config.duration("REDIS_COMMAND_TIMEOUT")),
  connectTimeout: Config.option(Config.duration("REDIS_CONNECT_TIMEOUT"))
}).pipe(
  Config.map((c) => ({
    nodes: c.nodes,
    username: Option.getOrUndefined(c.username),
    password: Option.getOrUndefined(c.password),
    commandTimeout: Option.getOrUndefined(c.commandTimeout),
    connectTimeout: Option.getOrUndefined(c.connectTimeout)
  }))
)

/**
 * Reads the cluster settings through Effect `Config` (by default {@link RedisClusterConfig}).
 *
 * @example
 * ```ts
 * import { Config, Layer } from "effect"
 * import { RedisClient, StrictDistributed } from "effect-failclosed"
 *
 * // CACHE_NODES=10.0.0.1:7000,10.0.0.2:7000,10.0.0.3:7000
 * const ClusterConfig = Config.map(Config.array(Config.string(), "CACHE_NODES"), (nodes) => ({ nodes }))
 * const CacheLive = StrictDistributed.pipe(Layer.provide(RedisClient.layerClusterConfig(ClusterConfig)))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerClusterConfig = (
  config: Config.Config<RedisClusterOptions> = RedisClusterConfig
): Layer.Layer<RedisClient, ConfigError> => Layer.scoped(RedisClient, Effect.flatMap(config, makeCluster))

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
export const RedisSentinelConfig: Config.Config<RedisSentinelOptions> = Config.all({
  sentinels: Config.array(Config.string(), "REDIS_SENTINELS"),
  name: Config.string("REDIS_SENTINEL_NAME"),
  username: Config.option(Config.string("REDIS_USERNAME")),
  password: Config.option(Config.redacted("REDIS_PASSWORD")),
  sentinelPassword: Config.option(Config.redacted("REDIS_SENTINEL_PASSWORD")),
  commandTimeout: Config.option(Config.duration("REDIS_COMMAND_TIMEOUT")),
  connectTimeout: Config.option(Config.duration("REDIS_CONNECT_TIMEOUT"))
}).pipe(
  Config.map((c) => ({
    sentinels: c.sentinels,
    name: c.name,
    username: Option.getOrUndefined(c.username),
    password: Option.getOrUndefined(c.password),
    sentinelPassword: Option.getOrUndefined(c.sentinelPassword),
    commandTimeout: Option.getOrUndefined(c.commandTimeout),
    connectTimeout: Option.getOrUndefined(c.connectTimeout)
  }))
)

/**
 * Reads the Sentinel settings through Effect `Config` (by default {@link RedisSentinelConfig}).
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { ExplicitDegraded, RedisClient } from "effect-failclosed"
 *
 * // REDIS_SENTINELS=10.0.0.1:26379,10.0.0.2:26379 REDIS_SENTINEL_NAME=cache
 * const CacheLive = ExplicitDegraded.pipe(Layer.provide(RedisClient.layerSentinelConfig()))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerSentinelConfig = (
  config: Config.Config<RedisSentinelOptions> = RedisSentinelConfig
): Layer.Layer<RedisClient, ConfigError> => Layer.scoped(RedisClient, Effect.flatMap(config, makeSentinel))
