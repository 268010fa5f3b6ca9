/**
 * The three Redis topologies a cache can run on, behind one interface, so that one behavioural suite runs unchanged
 * against each: a single server, a Redis Cluster (3 masters + 3 replicas) and Sentinel-managed replication (1 master,
 * 1 replica, 3 sentinels). Every topology is a Layer (started once per `layer(…)` block, stopped after it) of the
 * `Topology` service: a fresh client Layer per call, and raw access to the servers for checks behind the library's
 * back.
 */
import { Context, Duration, Effect, Layer } from "effect"
import { RedisClient } from "effect-failclosed"
import { redisCluster, type RedisCluster } from "../support/RedisCluster.js"
import { redisSentinel, type RedisSentinelSetup } from "../support/RedisSentinel.js"
import { redisServer, type RedisServer } from "../support/RedisServer.js"

export type TopologyName = "single" | "cluster" | "sentinel"

export const TOPOLOGIES: ReadonlyArray<TopologyName> = ["single", "cluster", "sentinel"]

export interface ClientTimeouts {
  readonly commandTimeout?: Duration.DurationInput
  readonly connectTimeout?: Duration.DurationInput
  readonly maxReconnectDelay?: Duration.DurationInput
  readonly startupTimeout?: Duration.DurationInput
}

export interface TopologyEnv {
  readonly name: TopologyName
  /** a client Layer with its own connection(s) */
  readonly client: (timeouts?: ClientTimeouts) => Layer.Layer<RedisClient>
  /** the servers that currently hold data: the masters */
  readonly masters: () => Promise<ReadonlyArray<RedisServer>>
  /** every key on every master (SCAN, optionally with MATCH) */
  readonly keys: (match?: string) => Promise<ReadonlyArray<string>>
  /** the cluster harness, for the cluster topology */
  readonly cluster: RedisCluster | undefined
  /** the sentinel harness, for the sentinel topology */
  readonly sentinel: RedisSentinelSetup | undefined
}

export class Topology extends Context.Tag("test/Topology")<Topology, TopologyEnv>() {}

const DEFAULT_TIMEOUTS = {
  commandTimeout: Duration.millis(500),
  connectTimeout: Duration.millis(1_000),
  maxReconnectDelay: Duration.millis(200),
  startupTimeout: Duration.seconds(5)
}

const scanAll = async (servers: ReadonlyArray<RedisServer>, match: string | undefined) => {
  const lists = await Promise.all(
    servers.map((s) => s.command("--scan", ...(match === undefined ? [] : ["--pattern", match])))
  )
  return [
    ...new Set(
      lists
        .join("\n")
        .split("\n")
        .filter((k) => k !== "")
    )
  ]
}

const singleEnv = (server: RedisServer): TopologyEnv => {
  const masters = async () => [server]
  return {
    name: "single",
    client: (timeouts) => RedisClient.layer({ url: server.url, ...DEFAULT_TIMEOUTS, ...timeouts }),
    masters,
    keys: (match) => scanAll([server], match),
    cluster: undefined,
    sentinel: undefined
  }
}

const clusterEnv = (cluster: RedisCluster): TopologyEnv => {
  const masters = async () => {
    const nodes = await cluster.topology()
    return nodes.filter((n) => n.role === "master" && !n.failing).map((n) => cluster.serverAt(n.port))
  }
  return {
    name: "cluster",
    client: (timeouts) => RedisClient.layerCluster({ nodes: cluster.nodes, ...DEFAULT_TIMEOUTS, ...timeouts }),
    masters,
    keys: async (match) => scanAll(await masters(), match),
    cluster,
    sentinel: undefined
  }
}

const sentinelEnv = (sentinel: RedisSentinelSetup): TopologyEnv => {
  const masters = async () => [await sentinel.master()]
  return {
    name: "sentinel",
    client: (timeouts) =>
      RedisClient.layerSentinel({
        sentinels: sentinel.sentinelAddresses,
        name: sentinel.name,
        ...DEFAULT_TIMEOUTS,
        ...timeouts
      }),
    masters,
    keys: async (match) => scanAll(await masters(), match),
    cluster: undefined,
    sentinel
  }
}

/** starts the topology (a scoped resource: everything is stopped when the scope closes, also on failure) */
export const startTopology = (name: TopologyName) => {
  switch (name) {
    case "single":
      return Effect.map(redisServer(), singleEnv)
    case "cluster":
      return Effect.map(redisCluster(), clusterEnv)
    case "sentinel":
      return Effect.map(redisSentinel(), sentinelEnv)
  }
}

export const topologyLayer = (name: TopologyName): Layer.Layer<Topology> => Layer.scoped(Topology, startTopology(name))
