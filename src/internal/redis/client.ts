/**
 * The bodies of `RedisClient`: the three clients (single node, Cluster, Sentinel), their settings (validated once,
 * when a Layer is made, or when `make` runs), their `Config`s, and how each is opened and closed. Nothing of a
 * client may print: ioredis' error events and console warnings go to Effect's Logger (see {@link routeOutput}).
 */
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Runtime from "effect/Runtime"
import type * as Scope from "effect/Scope"
import {
  awaitReady,
  cappedBackoff,
  closeClient as coreCloseClient,
  closeCluster as coreCloseCluster,
  describeUrl,
  failFastOptions,
  makeSecretScrubber,
  redisUrlProblem,
  urlPassword
} from "@effect-failclosed/core"
import { Cluster, type ClusterOptions, Redis, type RedisOptions } from "ioredis"
import type {
  RedisClient,
  RedisClientOptions,
  RedisClientService,
  RedisClusterOptions,
  RedisNodeAddress,
  RedisSentinelOptions
} from "../../RedisClient.js"
import { durationMillis, optionChecks } from "../options.js"

/** the service tag (the same key as the public class `RedisClient`) */
const tag = Context.GenericTag<RedisClient, RedisClientService>("effect-failclosed/RedisClient")

const check = optionChecks("RedisClient")

const DEFAULT_URL = "redis://127.0.0.1:6379"

// --- connection options: the fail-fast ioredis options are the core's (core/src/redis/options.ts) ----------------------

/** the core's fail-fast options from the settings' durations */
const failFast = (o: {
  readonly commandTimeout: Duration.Duration
  readonly connectTimeout: Duration.Duration
  readonly maxReconnectDelay: Duration.Duration
  readonly enableAutoPipelining: boolean
}): RedisOptions =>
  failFastOptions({
    commandTimeoutMillis: Duration.toMillis(o.commandTimeout),
    connectTimeoutMillis: Duration.toMillis(o.connectTimeout),
    maxReconnectDelayMillis: Duration.toMillis(o.maxReconnectDelay),
    enableAutoPipelining: o.enableAutoPipelining
  })

const backoffOf = (cap: Duration.Duration) => cappedBackoff(Duration.toMillis(cap))

const reveal = (u: string | Redacted.Redacted<string> | undefined): string | undefined =>
  u === undefined ? undefined : Redacted.isRedacted(u) ? Redacted.value(u) : u

// --- settings, validated once ----------------------------------------------------------------------------------------

/** the durations every client has */
const commonSettings = (options: RedisClientOptions | RedisClusterOptions | RedisSentinelOptions) => ({
  commandTimeout: Duration.millis(check.duration("commandTimeout", options.commandTimeout, "timeout", "300 millis")),
  connectTimeout: Duration.millis(check.duration("connectTimeout", options.connectTimeout, "timeout", "1 second")),
  maxReconnectDelay: Duration.millis(
    check.duration("maxReconnectDelay", options.maxReconnectDelay, "timeout", "500 millis")
  ),
  startupTimeout: Duration.millis(check.duration("startupTimeout", options.startupTimeout, "timeout", "2 seconds"))
})

const nonNegativeInteger = (name: string, value: number | undefined, fallback: number): number => {
  const v = value ?? fallback
  if (!Number.isSafeInteger(v) || v < 0) check.invalid(`${name} must be a non-negative integer`)
  return v
}

const singleSettings = (options: RedisClientOptions) => {
  const url = reveal(options.url) ?? DEFAULT_URL
  const problem = redisUrlProblem(url)
  if (problem !== undefined) check.invalid(`url ${problem}`)
  return { ...commonSettings(options), url, options }
}

/** an address is not echoed in a message: a URL with credentials pasted here must not end up in a log */
const addressProblem = (node: RedisNodeAddress): string | undefined => {
  const { host, port } = parseAddress(node)
  if (typeof host !== "string" || host.length === 0 || /[/@\s]/.test(host)) return "bad host"
  if (!Number.isInteger(port) || port <= 0 || port > 65_535) return "bad port"
  return undefined
}

const parseAddress = (node: RedisNodeAddress): { host: string; port: number } => {
  if (typeof node === "string") {
    const colon = node.lastIndexOf(":")
    let host = colon > 0 ? node.slice(0, colon) : ""
    const port = colon > 0 && /^\d{1,5}$/.test(node.slice(colon + 1)) ? Number(node.slice(colon + 1)) : NaN
    if (host.startsWith("[") && host.endsWith("]")) host = host.slice(1, -1)
    return { host, port }
  }
  if (typeof node === "object" && node !== null) return { host: node.host, port: node.port }
  return { host: "", port: NaN }
}

const addressesOf = (what: string, nodes: ReadonlyArray<RedisNodeAddress> | undefined) => {
  if (!Array.isArray(nodes) || nodes.length === 0) check.invalid(`${what} must list at least one "host:port"`)
  return nodes!.map((node, i) => {
    const problem = addressProblem(node)
    if (problem !== undefined) check.invalid(`${what}[${i}] must be "host:port" or { host, port } (${problem})`)
    return parseAddress(node)
  })
}

const clusterSettings = (options: RedisClusterOptions) => ({
  ...commonSettings(options),
  nodes: addressesOf("cluster nodes", options.nodes),
  slotsRefreshTimeout: check.duration("slotsRefreshTimeout", options.slotsRefreshTimeout, "timeout", "500 millis"),
  slotsRefreshInterval: check.duration("slotsRefreshInterval", options.slotsRefreshInterval, "timeout", "1 second"),
  retryDelay: check.duration("retryDelay", options.retryDelay, "timeout", "50 millis"),
  maxRedirections: nonNegativeInteger("maxRedirections", options.maxRedirections, 6),
  options
})

const sentinelSettings = (options: RedisSentinelOptions) => {
  if (typeof options.name !== "string" || options.name.length === 0) {
    check.invalid("sentinel name (the master group) must be a non-empty string")
  }
  return {
    ...commonSettings(options),
    sentinels: addressesOf("sentinels", options.sentinels),
    name: options.name,
    db: nonNegativeInteger("db", options.db, 0),
    options
  }
}

const describeNodes = (nodes: ReadonlyArray<{ host: string; port: number }>): string =>
  nodes.map((n) => (n.host.includes(":") ? `[${n.host}]:${n.port}` : `${n.host}:${n.port}`)).join(",")

// --- what a client may print goes to Effect's Logger -------------------------------------------------------------------

/** the messages ioredis writes with console.warn (a password the server does not need, a ready check it cannot run) */
const IOREDIS_WARNING =
  /^(\[WARN\] |\[ERROR\] The server returned "wrong number of arguments for 'auth'|Skipping the ready check)/

let warningSinks: Array<(message: string) => void> = []
let originalWarn: typeof console.warn | undefined

/**
 * ioredis writes a few warnings with `console.warn` and no way to turn them off. While a client of this library is
 * open, those messages (and only those: every other call goes to the original `console.warn`) are logged through
 * Effect's Logger of the client's runtime instead, at Warning level. They contain no secret.
 */
const captureWarnings = (sink: (message: string) => void): (() => void) => {
  if (warningSinks.length === 0) {
    const original = console.warn
    originalWarn = original
    console.warn = (...args: Array<unknown>) => {
      const first = args[0]
      if (typeof first === "string" && IOREDIS_WARNING.test(first) && warningSinks.length > 0) {
        warningSinks[warningSinks.length - 1]!(first)
        return
      }
      original.apply(console, args)
    }
  }
  warningSinks = [...warningSinks, sink]
  return () => {
    warningSinks = warningSinks.filter((s) => s !== sink)
    if (warningSinks.length === 0 && originalWarn !== undefined) {
      console.warn = originalWarn
      originalWarn = undefined
    }
  }
}

/**
 * Routes what a client would print to Effect's Logger: its "error" events (and a cluster's "node error" events) at
 * Debug level, scrubbed of secrets (the failures reach callers as typed errors; these only say why a connection
 * attempt failed), and ioredis' console warnings at Warning level. Returns what undoes it.
 */
const routeOutput = (
  runtime: Runtime.Runtime<never>,
  emitters: ReadonlyArray<Redis | Cluster>,
  describeError: (e: unknown) => string
): (() => void) => {
  const run = Runtime.runFork(runtime)
  const onError = (error: unknown) => {
    run(Effect.logDebug(`effect-failclosed: Redis connection error: ${describeError(error)}`))
  }
  for (const emitter of emitters) {
    emitter.on("error", onError)
    if (emitter instanceof Cluster) emitter.on("node error", onError)
  }
  const release = captureWarnings((message) => run(Effect.logWarning(`effect-failclosed: ioredis: ${message}`)))
  return release
}

/**
 * A Sentinel client's failover detector opens connections to the sentinels that have no "error" listener (ioredis
 * then prints every failed attempt). The client's connector makes them: this adds the listener to each.
 */
const listenToSentinels = (client: Redis, onError: (error: unknown) => void): void => {
  const connector = (client as unknown as { connector?: { connectToSentinel?: (...args: Array<any>) => Redis } })
    .connector
  const connect = connector?.connectToSentinel
  if (connector === undefined || typeof connect !== "function") return
  connector.connectToSentinel = (...args: Array<any>) => {
    const sentinel = connect.apply(connector, args)
    sentinel.on("error", onError)
    return sentinel
  }
}

// --- opening and closing -----------------------------------------------------------------------------------------------

const awaitReadyOf =
  (client: Redis | Cluster, describeError: (e: unknown) => string) =>
  (timeout: Duration.Duration): Effect.Effect<void, string> =>
    Effect.async<void, string>((resume) => {
      const cancel = awaitReady(
        client,
        describeError,
        Duration.toMillis(timeout),
        Duration.format(timeout),
        (failure) => resume(failure === undefined ? Effect.void : Effect.fail(failure))
      )
      return Effect.sync(cancel)
    })

const closeClient = (client: Redis): Effect.Effect<void> =>
  Effect.async<void>((resume) => coreCloseClient(client, () => resume(Effect.void)))

const closeCluster = (client: Cluster): Effect.Effect<void> =>
  Effect.async<void>((resume) => coreCloseCluster(client, () => resume(Effect.void)))

/**
 * ioredis ends a Sentinel client for good when its failover detector (on `+switch-master`) closes the connector while
 * a connection attempt is under way: the attempt then fails with "Connection is closed." and the client never
 * reconnects. Until the client is closed by its scope, an end that nobody asked for starts a new connection, after
 * a capped backoff.
 */
const reviveWhenEnded = (client: Redis, maxDelay: Duration.Duration) => {
  const backoff = backoffOf(maxDelay)
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
      if (!stopped && client.status === "end") client.connect().catch(() => {})
    }, backoff(++attempts))
  }
  client.on("ready", onReady)
  client.on("end", onEnd)
  return () => {
    stopped = true
    if (timer !== undefined) clearTimeout(timer)
    client.off("ready", onReady)
    client.off("end", onEnd)
  }
}

/**
 * A client in a scope: opened by `open` with the runtime's Logger receiving what it would print, closed (and its
 * output routing undone) when the scope closes.
 */
const scopedClient = <C extends Redis | Cluster>(options: {
  readonly open: () => C
  readonly close: (client: C) => Effect.Effect<void>
  readonly describeError: (e: unknown) => string
  readonly commandTimeout: Duration.Duration
  readonly startupTimeout: Duration.Duration
  readonly description: string
  /** more to undo when the client closes */
  readonly extra?: (client: C, onError: (error: unknown) => void) => () => void
}): Effect.Effect<RedisClientService, never, Scope.Scope> =>
  Effect.flatMap(Effect.runtime<never>(), (runtime) =>
    Effect.map(
      Effect.acquireRelease(
        Effect.sync(() => {
          const client = options.open()
          const unroute = routeOutput(runtime, [client], options.describeError)
          const run = Runtime.runFork(runtime)
          const undo =
            options.extra?.(client, (error) =>
              run(Effect.logDebug(`effect-failclosed: Redis connection error: ${options.describeError(error)}`))
            ) ?? (() => {})
          return { client, release: () => (undo(), unroute()) }
        }),
        ({ client, release }) => Effect.ensuring(options.close(client), Effect.sync(release))
      ),
      ({ client }): RedisClientService => ({
        client,
        commandTimeout: options.commandTimeout,
        startupTimeout: options.startupTimeout,
        description: options.description,
        awaitReady: awaitReadyOf(client, options.describeError),
        describeError: options.describeError
      })
    )
  )

// --- the three clients ---------------------------------------------------------------------------------------------------

const openSingle = (s: ReturnType<typeof singleSettings>) => {
  const { options, url } = s
  const password = reveal(options.password)
  const describeError = makeSecretScrubber([password, urlPassword(url), url])
  const redisOptions: RedisOptions = {
    ...failFast({ ...s, enableAutoPipelining: options.enableAutoPipelining ?? true }),
    ...(options.username !== undefined ? { username: options.username } : {}),
    ...(password !== undefined ? { password } : {}),
    ...(options.tls !== undefined ? { tls: options.tls } : {})
  }
  return scopedClient({
    open: () => new Redis(url, redisOptions),
    close: closeClient,
    describeError,
    commandTimeout: s.commandTimeout,
    startupTimeout: s.startupTimeout,
    description: describeUrl(url)
  })
}

const openCluster = (s: ReturnType<typeof clusterSettings>) => {
  const { options } = s
  const password = reveal(options.password)
  const describeError = makeSecretScrubber([password])
  const enableAutoPipelining = options.enableAutoPipelining ?? false
  // Per node: the single-node fail-fast settings. ioredis itself keeps a per-node offline queue while a node
  // connection is being opened and never reconnects a lost node (it refreshes the slot map instead); the
  // cluster-level `enableOfflineQueue: false` below makes a command to a node that is not connected fail at once.
  const redisOptions: RedisOptions = {
    ...failFast({ ...s, enableAutoPipelining }),
    ...(options.username !== undefined ? { username: options.username } : {}),
    ...(password !== undefined ? { password } : {}),
    ...(options.tls !== undefined ? { tls: options.tls } : {})
  }
  const clusterOptions: ClusterOptions = {
    redisOptions,
    enableOfflineQueue: false,
    enableReadyCheck: true,
    scaleReads: "master",
    clusterRetryStrategy: backoffOf(s.maxReconnectDelay),
    maxRedirections: s.maxRedirections,
    retryDelayOnFailover: s.retryDelay,
    retryDelayOnClusterDown: s.retryDelay,
    retryDelayOnTryAgain: s.retryDelay,
    retryDelayOnMoved: 0,
    slotsRefreshTimeout: s.slotsRefreshTimeout,
    slotsRefreshInterval: s.slotsRefreshInterval,
    enableAutoPipelining,
    lazyConnect: false
  }
  return scopedClient({
    open: () => new Cluster(s.nodes, clusterOptions),
    close: closeCluster,
    describeError,
    commandTimeout: s.commandTimeout,
    startupTimeout: s.startupTimeout,
    description: `cluster ${describeNodes(s.nodes)}`
  })
}

const openSentinel = (s: ReturnType<typeof sentinelSettings>) => {
  const { options } = s
  const password = reveal(options.password)
  const sentinelPassword = reveal(options.sentinelPassword)
  const describeError = makeSecretScrubber([password, sentinelPassword])
  const redisOptions: RedisOptions = {
    ...failFast({ ...s, enableAutoPipelining: options.enableAutoPipelining ?? true }),
    sentinels: s.sentinels,
    name: s.name,
    role: "master",
    db: s.db,
    // never give up: a connector that returns no delay ends the client for good. Each round asks every
    // sentinel, each question bounded by connectTimeout and sentinelCommandTimeout.
    sentinelRetryStrategy: backoffOf(s.maxReconnectDelay),
    // the failover detector's subscriptions come back when a sentinel does, at most every 5 seconds
    sentinelReconnectStrategy: (times: number) => Math.min(100 * 2 ** Math.min(times, 10), 5_000),
    sentinelCommandTimeout: Duration.toMillis(s.commandTimeout),
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
  return scopedClient({
    open: () => new Redis(redisOptions),
    close: closeClient,
    describeError,
    commandTimeout: s.commandTimeout,
    startupTimeout: s.startupTimeout,
    description: `sentinel master "${s.name}" via ${describeNodes(s.sentinels)}`,
    extra: (client, onError) => {
      listenToSentinels(client, onError)
      return reviveWhenEnded(client, s.maxReconnectDelay)
    }
  })
}

/** @internal */
export const make = (options: RedisClientOptions = {}) => Effect.suspend(() => openSingle(singleSettings(options)))
/** @internal */
export const makeCluster = (options: RedisClusterOptions) => Effect.suspend(() => openCluster(clusterSettings(options)))
/** @internal */
export const makeSentinel = (options: RedisSentinelOptions) =>
  Effect.suspend(() => openSentinel(sentinelSettings(options)))

// invalid options throw when the Layer is made, before any connection; they are checked once
/** @internal */
export const layer = (options: RedisClientOptions = {}): Layer.Layer<RedisClient> => {
  const settings = singleSettings(options)
  return Layer.scoped(
    tag,
    Effect.suspend(() => openSingle(settings))
  )
}
/** @internal */
export const layerCluster = (options: RedisClusterOptions): Layer.Layer<RedisClient> => {
  const settings = clusterSettings(options)
  return Layer.scoped(
    tag,
    Effect.suspend(() => openCluster(settings))
  )
}
/** @internal */
export const layerSentinel = (options: RedisSentinelOptions): Layer.Layer<RedisClient> => {
  const settings = sentinelSettings(options)
  return Layer.scoped(
    tag,
    Effect.suspend(() => openSentinel(settings))
  )
}

// --- Config ------------------------------------------------------------------------------------------------------------

/**
 * Options read from `config`, checked as a Layer checks them: an invalid option is a `ConfigError` (never a defect).
 */
const fromConfig = <O, S>(
  config: Config.Config<O>,
  settingsOf: (options: O) => S,
  open: (settings: S) => Effect.Effect<RedisClientService, never, Scope.Scope>
): Layer.Layer<RedisClient, ConfigError.ConfigError> =>
  Layer.scoped(
    tag,
    Effect.flatMap(config, (options) => {
      let settings: S
      try {
        settings = settingsOf(options)
      } catch (error) {
        return Effect.fail(ConfigError.InvalidData([], error instanceof Error ? error.message : String(error)))
      }
      return open(settings)
    })
  )

/** @internal */
export const layerConfig = (config: Config.Config<RedisClientOptions> = clientConfig) =>
  fromConfig(config, singleSettings, openSingle)
/** @internal */
export const layerClusterConfig = (config: Config.Config<RedisClusterOptions> = clusterConfig) =>
  fromConfig(config, clusterSettings, openCluster)
/** @internal */
export const layerSentinelConfig = (config: Config.Config<RedisSentinelOptions> = sentinelConfig) =>
  fromConfig(config, sentinelSettings, openSentinel)

/**
 * A duration setting: anything `Duration.decode` reads (`"300 millis"`, `"2 seconds"`), or a plain number of
 * milliseconds (`300`); positive and finite, else a `ConfigError` that names the variable.
 */
const durationConfig = (name: string): Config.Config<Option.Option<Duration.Duration>> =>
  Config.option(
    Config.mapOrFail(Config.string(name), (text) => {
      const trimmed = text.trim()
      const input = /^\d+(\.\d+)?$/.test(trimmed) ? Number(trimmed) : trimmed
      const millis = durationMillis(name, input, "timeout")
      return typeof millis === "string"
        ? Either.left(ConfigError.InvalidData([], `${millis} (a duration such as "300 millis", or milliseconds)`))
        : Either.right(Duration.millis(millis))
    })
  )

const urlConfig = Config.option(
  Config.mapOrFail(Config.redacted("REDIS_URL"), (url) =>
    redisUrlProblem(Redacted.value(url)) === undefined
      ? Either.right(url)
      : Either.left(ConfigError.InvalidData([], `REDIS_URL ${redisUrlProblem(Redacted.value(url))}`))
  )
)

const addressesConfig = (name: string) =>
  Config.mapOrFail(Config.array(Config.string(), name), (nodes) => {
    if (nodes.length === 0) return Either.left(ConfigError.InvalidData([], `${name} must list at least one host:port`))
    for (let i = 0; i < nodes.length; i++) {
      const problem = addressProblem(nodes[i]!)
      if (problem !== undefined) {
        return Either.left(ConfigError.InvalidData([], `${name}[${i}] must be host:port (${problem})`))
      }
    }
    return Either.right(nodes)
  })

const common = {
  username: Config.option(Config.string("REDIS_USERNAME")),
  password: Config.option(Config.redacted("REDIS_PASSWORD")),
  commandTimeout: durationConfig("REDIS_COMMAND_TIMEOUT"),
  connectTimeout: durationConfig("REDIS_CONNECT_TIMEOUT")
}

/** @internal */
export const clientConfig: Config.Config<RedisClientOptions> = Config.map(
  Config.all({ url: urlConfig, ...common }),
  (c) => ({
    url: Option.getOrUndefined(c.url),
    username: Option.getOrUndefined(c.username),
    password: Option.getOrUndefined(c.password),
    commandTimeout: Option.getOrUndefined(c.commandTimeout),
    connectTimeout: Option.getOrUndefined(c.connectTimeout)
  })
)

/** @internal */
export const clusterConfig: Config.Config<RedisClusterOptions> = Config.map(
  Config.all({ nodes: addressesConfig("REDIS_CLUSTER_NODES"), ...common }),
  (c) => ({
    nodes: c.nodes,
    username: Option.getOrUndefined(c.username),
    password: Option.getOrUndefined(c.password),
    commandTimeout: Option.getOrUndefined(c.commandTimeout),
    connectTimeout: Option.getOrUndefined(c.connectTimeout)
  })
)

/** @internal */
export const sentinelConfig: Config.Config<RedisSentinelOptions> = Config.map(
  Config.all({
    sentinels: addressesConfig("REDIS_SENTINELS"),
    name: Config.string("REDIS_SENTINEL_NAME"),
    sentinelPassword: Config.option(Config.redacted("REDIS_SENTINEL_PASSWORD")),
    ...common
  }),
  (c) => ({
    sentinels: c.sentinels,
    name: c.name,
    username: Option.getOrUndefined(c.username),
    password: Option.getOrUndefined(c.password),
    sentinelPassword: Option.getOrUndefined(c.sentinelPassword),
    commandTimeout: Option.getOrUndefined(c.commandTimeout),
    connectTimeout: Option.getOrUndefined(c.connectTimeout)
  })
)
