/**
 * Batches on real Redis, without Effect: a single redis-server and a 3-master Cluster. Commands are counted on the
 * servers (`INFO commandstats`), so "one MGET per node, never one command per key" is what Redis saw.
 */
import { Cluster, Redis } from "ioredis"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type RedisServer, startRedis } from "../../test/support/RedisServer.js"
import { type RedisCluster, startRedisCluster } from "../../test/support/RedisCluster.js"
import { getMany, groupByOwner, setMany } from "../src/batch.js"
import { keySlot } from "../src/redis/cluster.js"

/** calls of each command on one server since its last CONFIG RESETSTAT */
const commandCalls = async (server: RedisServer): Promise<Record<string, number>> => {
  const text = await server.command("INFO", "commandstats")
  const calls: Record<string, number> = {}
  for (const m of text.matchAll(/^cmdstat_([a-z|]+):calls=(\d+)/gm)) calls[m[1]!] = Number(m[2])
  return calls
}
const resetStats = (servers: ReadonlyArray<RedisServer>) =>
  Promise.all(servers.map((s) => s.command("CONFIG", "RESETSTAT")))

describe("batches on a single redis-server", () => {
  let server: RedisServer
  let redis: Redis
  beforeAll(async () => {
    server = await startRedis()
    redis = new Redis(server.url, { maxRetriesPerRequest: 0 })
    await redis.ping()
  })
  afterAll(async () => {
    redis.disconnect()
    await server.stop()
  })

  // catches: a getMany that sends one GET per key, or answers out of key order, or loses a missing key's place
  it("getMany answers in key order (null for a missing key) with one MGET for 100 keys", async () => {
    const keys = Array.from({ length: 100 }, (_, i) => `b:${i}`)
    await setMany(
      redis,
      keys.filter((_, i) => i % 3 !== 0).map((k) => [k, "v" + k, 60_000] as const),
      keySlot
    )
    await resetStats([server])
    const values = await getMany(redis, keys, keySlot)
    expect(values).toEqual(keys.map((k, i) => (i % 3 === 0 ? null : "v" + k)))
    const calls = await commandCalls(server)
    expect(calls["mget"]).toBe(1)
    expect(calls["get"]).toBeUndefined()
  })

  // catches: a setMany that drops the expiry, writes no expiry as PX 0, or sends one round trip per key
  it("setMany writes each entry with its own time to live in one pipeline", async () => {
    await resetStats([server])
    await setMany(
      redis,
      [
        ["s:a", "1", 60_000],
        ["s:b", "2", undefined]
      ],
      keySlot
    )
    expect(await redis.mget("s:a", "s:b")).toEqual(["1", "2"])
    const ttlA = await redis.pttl("s:a")
    expect(ttlA).toBeGreaterThan(50_000)
    expect(ttlA).toBeLessThanOrEqual(60_000)
    expect(await redis.pttl("s:b")).toBe(-1)
    expect((await commandCalls(server))["set"]).toBe(2)
  })

  // catches: an empty batch that still sends a command (MGET with no key is an error reply)
  it("an empty batch sends nothing", async () => {
    expect(await getMany(redis, [], keySlot)).toEqual([])
    await setMany(redis, [], keySlot)
  })

  // catches: a batch that hangs or answers partly when Redis does not answer (the caller's deadline ends it)
  it("a killed server fails the whole batch", async () => {
    const other = await startRedis()
    const client = new Redis(other.url, { maxRetriesPerRequest: 0, retryStrategy: () => null })
    await client.ping()
    await other.kill()
    await expect(getMany(client, ["x", "y"], keySlot)).rejects.toThrow()
    await expect(setMany(client, [["x", "1", 1000]], keySlot)).rejects.toThrow()
    client.disconnect()
    await other.stop()
  })
})

describe("batches on a Redis Cluster", () => {
  let cluster: RedisCluster
  let client: Cluster
  beforeAll(async () => {
    cluster = await startRedisCluster()
    client = new Cluster(
      cluster.nodes.map((n) => {
        const [host, port] = n.split(":")
        return { host: host!, port: Number(port) }
      }),
      { enableOfflineQueue: true, redisOptions: { maxRetriesPerRequest: 0 } }
    )
    await new Promise<void>((resolve) => client.once("ready", () => resolve()))
  }, 60_000)
  afterAll(async () => {
    client.disconnect()
    await cluster.stop()
  })

  // catches: keys of several slots sent in one MGET (CROSSSLOT), one command per key, or values put back in the
  // wrong places when the groups are merged
  it("getMany of 100 keys over many slots: one command per master, answers in key order", async () => {
    const keys = Array.from({ length: 100 }, (_, i) => `fc:k:profiles:acme:${i}`)
    const slots = new Set(keys.map(keySlot))
    expect(slots.size).toBeGreaterThan(50)
    await setMany(
      client,
      keys.filter((_, i) => i % 4 !== 0).map((k) => [k, "v" + k, 60_000] as const),
      keySlot
    )
    const masters = (await cluster.topology()).filter((n) => n.role === "master")
    const servers = masters.map((m) => cluster.serverAt(m.port))
    await resetStats(servers)
    const values = await getMany(client, keys, keySlot)
    expect(values).toEqual(keys.map((k, i) => (i % 4 === 0 ? null : "v" + k)))
    const sent = async () => {
      let total = 0
      for (const server of servers) {
        const calls = await commandCalls(server)
        // one command from the client on each master: the script (EVALSHA, and EVAL the first time, on NOSCRIPT)
        const perNode = (calls["evalsha"] ?? 0) + (calls["eval"] ?? 0) + (calls["mget"] ?? 0)
        expect(perNode).toBeGreaterThanOrEqual(1)
        expect(perNode).toBeLessThanOrEqual(2)
        total += calls["evalsha"] ?? 0
      }
      return total
    }
    expect(await sent()).toBe(masters.length)
    // the second time the script is cached: exactly one EVALSHA per master, nothing else
    await resetStats(servers)
    expect(await getMany(client, keys, keySlot)).toEqual(values)
    expect(await sent()).toBe(masters.length)
  })

  // catches: a setMany that sends one pipeline for keys of several masters (ioredis refuses it) or loses entries
  it("setMany over every master writes every entry with its time to live", async () => {
    const entries = Array.from({ length: 60 }, (_, i) => [`sm:${i}`, String(i), 30_000] as const)
    await setMany(client, entries, keySlot)
    expect(
      await getMany(
        client,
        entries.map((e) => e[0]),
        keySlot
      )
    ).toEqual(entries.map((e) => e[1]))
    expect(await client.pttl("sm:7")).toBeGreaterThan(20_000)
  })

  // catches: a grouping that mixes owners or marks a one-slot group cross-slot (an unnecessary script)
  it("groups keys by the owner of their slot", () => {
    const slots: Array<Array<string> | undefined> = []
    slots[1] = ["a:1"]
    slots[2] = ["a:1"]
    slots[3] = ["b:1"]
    const slotOf = (k: string) => Number(k)
    const groups = groupByOwner(slots, ["1", "3", "2", "1", "9"], slotOf)
    expect(groups).toEqual([
      { indexes: [0, 2, 3], crossSlot: true, slot: 1 },
      { indexes: [1], crossSlot: false, slot: 3 },
      { indexes: [4], crossSlot: false, slot: 9 }
    ])
  })
})
