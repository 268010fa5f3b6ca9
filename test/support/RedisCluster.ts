/**
 * Test harness for a real Redis Cluster: 3 masters + 3 replicas on free loopback ports, each a `redis-server` started
 * (and tracked, and cleaned up) by `RedisServer.ts`, joined with `redis-cli --cluster create … --cluster-replicas 1`.
 *
 * - every node has its own temp dir, which holds its `--cluster-config-file`;
 * - `--cluster-node-timeout` is short (default 1 second) so that a failover takes a few seconds, not fifteen;
 * - `--cluster-require-full-coverage no` by default: with the Redis default (`yes`) every node refuses every command
 *   from the moment a master is flagged FAIL until its replica is promoted, which would hide what a client does with
 *   the healthy slots (pass `requireFullCoverage: true` to see that behaviour);
 * - setup waits until every node reports `cluster_state:ok`, knows all six nodes, and every replica's link is up.
 *
 * If anything fails half-way, every server started so far is stopped before the error is rethrown.
 */
import { execFile } from "node:child_process"
import { Effect } from "effect"
import type { Scope } from "effect"
import { HOST, type RedisServer, startRedis } from "./RedisServer.js"

export interface StartRedisClusterOptions {
  /** `--cluster-node-timeout` in milliseconds (default 1000) */
  readonly nodeTimeoutMs?: number
  /** `--cluster-require-full-coverage` (default false, see the module comment) */
  readonly requireFullCoverage?: boolean
  /** extra `redis-server` arguments for every node */
  readonly args?: ReadonlyArray<string>
  /** how long to wait for the cluster to become healthy (default 20 s) */
  readonly readyTimeoutMs?: number
}

export interface ClusterNodeInfo {
  readonly id: string
  readonly port: number
  readonly role: "master" | "replica"
  /** for a replica: the id of its master */
  readonly masterId: string | undefined
  /** inclusive slot ranges owned (masters only) */
  readonly slots: ReadonlyArray<readonly [number, number]>
  /** flagged `fail` or `fail?` by the node that was asked */
  readonly failing: boolean
}

export interface RedisCluster {
  /** all six servers (masters and replicas at creation; roles change on failover) */
  readonly servers: ReadonlyArray<RedisServer>
  /** `127.0.0.1:<port>` of every node: the client's startup nodes */
  readonly nodes: ReadonlyArray<string>
  /** the server on `port` */
  serverAt(port: number): RedisServer
  /** the hash slot of `key` (`CLUSTER KEYSLOT`, asked of a live node) */
  slotOf(key: string): Promise<number>
  /** the cluster's view (`CLUSTER NODES`) from a live, unpaused node, optionally other than `exclude` */
  topology(exclude?: ReadonlyArray<RedisServer>): Promise<ReadonlyArray<ClusterNodeInfo>>
  /** the master that currently owns `slot`, as seen by a live node */
  masterOfSlot(slot: number, exclude?: ReadonlyArray<RedisServer>): Promise<RedisServer>
  /** the live replica of `master` */
  replicaOf(master: RedisServer): Promise<RedisServer>
  /** a key whose slot is owned by `master` (`prefix` + a counter) */
  keyOwnedBy(master: RedisServer, prefix: string): Promise<string>
  /**
   * Waits until `slot` is owned by a master other than `old` that says `role:master` itself and whose view has
   * `cluster_state:ok`; returns it.
   */
  waitForPromotion(slot: number, old: RedisServer, timeoutMs?: number): Promise<RedisServer>
  /** stops every server (idempotent) */
  stop(): Promise<void>
}

const DEFAULT_NODE_TIMEOUT_MS = 1_000
const DEFAULT_READY_TIMEOUT_MS = 20_000
const POLL_MS = 50

/** Starts a fresh 3 + 3 cluster and waits until it is healthy (about 2 seconds on an idle machine). */
export const startRedisCluster = async (options?: StartRedisClusterOptions): Promise<RedisCluster> => {
  const nodeTimeout = options?.nodeTimeoutMs ?? DEFAULT_NODE_TIMEOUT_MS
  const args = [
    "--cluster-enabled",
    "yes",
    // relative to --dir, which is the server's own temp dir
    "--cluster-config-file",
    "nodes.conf",
    "--cluster-node-timeout",
    String(nodeTimeout),
    "--cluster-require-full-coverage",
    options?.requireFullCoverage === true ? "yes" : "no",
    // a replica's first sync would otherwise wait 5 s for more replicas to join a diskless transfer
    "--repl-diskless-sync-delay",
    "0",
    ...(options?.args ?? [])
  ]
  const started = await Promise.allSettled(Array.from({ length: 6 }, () => startRedis({ args })))
  const servers = started.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []))
  const cluster = new RedisClusterImpl(servers)
  try {
    const failed = started.find((r): r is PromiseRejectedResult => r.status === "rejected")
    if (failed !== undefined) throw failed.reason
    await createCluster(servers)
    await cluster.waitHealthy(options?.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS)
    return cluster
  } catch (error) {
    await cluster.stop()
    throw error
  }
}

/** Scoped resource for `it.scoped`: started on acquire, stopped on release (also when the test fails). */
export const redisCluster = (options?: StartRedisClusterOptions): Effect.Effect<RedisCluster, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(() => startRedisCluster(options)),
    (cluster) => Effect.promise(() => cluster.stop())
  )

const createCluster = (servers: ReadonlyArray<RedisServer>): Promise<void> =>
  new Promise((resolve, reject) => {
    const cliArgs = [
      "--cluster",
      "create",
      ...servers.map((s) => `${HOST}:${s.port}`),
      "--cluster-replicas",
      "1",
      "--cluster-yes"
    ]
    execFile("redis-cli", cliArgs, { encoding: "utf8", timeout: 20_000, killSignal: "SIGKILL" }, (error, stdout) => {
      if (error === null && /All 16384 slots covered/.test(stdout)) return resolve()
      reject(new Error(`redis-cli --cluster create failed: ${error?.message ?? "no coverage"}\n${stdout}`))
    })
  })

class RedisClusterImpl implements RedisCluster {
  readonly nodes: ReadonlyArray<string>
  #stopping: Promise<void> | undefined

  constructor(readonly servers: ReadonlyArray<RedisServer>) {
    this.nodes = servers.map((s) => `${HOST}:${s.port}`)
  }

  serverAt(port: number): RedisServer {
    const server = this.servers.find((s) => s.port === port)
    if (server === undefined) throw new Error(`no cluster node on port ${port}`)
    return server
  }

  #live(exclude: ReadonlyArray<RedisServer> = []): Array<RedisServer> {
    return this.servers.filter((s) => s.isRunning && !s.isPaused && !exclude.includes(s))
  }

  async #ask(exclude: ReadonlyArray<RedisServer>, ...args: Array<string>): Promise<string> {
    let lastError: unknown = new Error("no live cluster node")
    for (const server of this.#live(exclude)) {
      try {
        return await server.commandWithTimeout(2_000, ...args)
      } catch (error) {
        lastError = error
      }
    }
    throw lastError
  }

  async slotOf(key: string): Promise<number> {
    return Number(await this.#ask([], "CLUSTER", "KEYSLOT", key))
  }

  async topology(exclude: ReadonlyArray<RedisServer> = []): Promise<ReadonlyArray<ClusterNodeInfo>> {
    return parseClusterNodes(await this.#ask(exclude, "CLUSTER", "NODES"))
  }

  async masterOfSlot(slot: number, exclude: ReadonlyArray<RedisServer> = []): Promise<RedisServer> {
    const nodes = await this.topology(exclude)
    const owner = nodes.find((n) => n.role === "master" && n.slots.some(([a, b]) => a <= slot && slot <= b))
    if (owner === undefined) throw new Error(`no master owns slot ${slot}`)
    return this.serverAt(owner.port)
  }

  async replicaOf(master: RedisServer): Promise<RedisServer> {
    // right after a change a node may still flag a peer as `fail?`: ask again for a moment
    const deadline = Date.now() + 3_000
    for (;;) {
      const nodes = await this.topology()
      const m = nodes.find((n) => n.port === master.port)
      const replica = nodes.find((n) => n.role === "replica" && n.masterId === m?.id && !n.failing)
      if (replica !== undefined && this.serverAt(replica.port).isRunning) return this.serverAt(replica.port)
      if (Date.now() > deadline) {
        throw new Error(`no live replica of the master on port ${master.port} in ${JSON.stringify(nodes)}`)
      }
      await sleep(POLL_MS)
    }
  }

  async keyOwnedBy(master: RedisServer, prefix: string): Promise<string> {
    const nodes = await this.topology()
    const ranges = nodes.find((n) => n.port === master.port)?.slots ?? []
    for (let i = 0; i < 10_000; i++) {
      const key = `${prefix}${i}`
      const slot = await this.slotOf(key)
      if (ranges.some(([a, b]) => a <= slot && slot <= b)) return key
    }
    throw new Error(`no key with prefix ${prefix} lands on port ${master.port}`)
  }

  async waitForPromotion(slot: number, old: RedisServer, timeoutMs = 15_000): Promise<RedisServer> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      try {
        const owner = await this.masterOfSlot(slot, [old])
        if (owner !== old) {
          const [role, info] = await Promise.all([
            owner.commandWithTimeout(1_000, "ROLE"),
            owner.commandWithTimeout(1_000, "CLUSTER", "INFO")
          ])
          if (role.startsWith("master") && /cluster_state:ok/.test(info)) return owner
        }
      } catch {
        // a node answering mid-failover: ask again
      }
      if (Date.now() > deadline) throw new Error(`slot ${slot} was not taken over from port ${old.port}`)
      await sleep(POLL_MS)
    }
  }

  /** every node: cluster_state:ok and six known nodes; every replica: link to its master up */
  async waitHealthy(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs
    let last = ""
    for (;;) {
      try {
        const views = await Promise.all(
          this.servers.map(async (s) => {
            const [info, replication] = await Promise.all([
              s.commandWithTimeout(1_000, "CLUSTER", "INFO"),
              s.commandWithTimeout(1_000, "INFO", "replication")
            ])
            return { info, replication }
          })
        )
        const ok = views.every(
          ({ info, replication }) =>
            /cluster_state:ok/.test(info) &&
            /cluster_known_nodes:6\b/.test(info) &&
            (/role:master/.test(replication) || /master_link_status:up/.test(replication))
        )
        if (ok) return
        last = views.map((v) => v.info.split("\n")[0]?.trim()).join(", ")
      } catch (error) {
        last = String(error)
      }
      if (Date.now() > deadline) throw new Error(`cluster did not become healthy within ${timeoutMs} ms (${last})`)
      await sleep(POLL_MS)
    }
  }

  stop(): Promise<void> {
    this.#stopping ??= Promise.allSettled(this.servers.map((s) => s.stop())).then((results) => {
      const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected")
      if (failed !== undefined) throw failed.reason
    })
    return this.#stopping
  }
}

/** `CLUSTER NODES`: `<id> <ip:port@cport> <flags> <master> <ping> <pong> <epoch> <link> <slot>…` */
export const parseClusterNodes = (text: string): ReadonlyArray<ClusterNodeInfo> =>
  text
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line.length > 0)
    .map((line) => {
      const [id = "", address = "", flagText = "", master = "-", , , , , ...slotFields] = line.split(" ")
      const flags = flagText.split(",")
      const port = Number(/:(\d+)@/.exec(address)?.[1] ?? NaN)
      const slots = slotFields
        .filter((f) => !f.startsWith("["))
        .map((f): readonly [number, number] => {
          const [a, b] = f.split("-")
          return [Number(a), Number(b ?? a)]
        })
      return {
        id,
        port,
        role: flags.includes("master") ? "master" : "replica",
        masterId: master === "-" ? undefined : master,
        slots,
        failing: flags.includes("fail") || flags.includes("fail?")
      }
    })

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))
