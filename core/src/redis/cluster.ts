/**
 * What the Redis store needs to know of a Redis Cluster: the slot of a key, the
 * failure domain of a key (the slot range of its shard), and the masters a prefix scan must visit.
 */
import type { Cluster, Redis } from "ioredis"

/** the slots of a Redis Cluster */
export const SLOT_COUNT = 16384

/** CRC16 (XMODEM: polynomial 0x1021, initial value 0), one table entry per byte value */
const TABLE = (() => {
  const table = new Uint16Array(256)
  for (let i = 0; i < 256; i++) {
    let crc = i << 8
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff
    table[i] = crc
  }
  return table
})()

const crc16 = (bytes: Uint8Array, from: number, to: number): number => {
  let crc = 0
  for (let i = from; i < to; i++) crc = ((crc << 8) & 0xffff) ^ TABLE[((crc >> 8) ^ bytes[i]!) & 0xff]!
  return crc
}

/**
 * The hash slot of a key, as the Redis Cluster specification defines it: CRC16 of the key's UTF-8 bytes modulo
 * 16384; when the key holds a `{` followed by a `}` with at least one byte between them, only the bytes between the
 * first `{` and the first `}` after it are hashed (the hash tag).
 *
 * Not ioredis' `cluster-key-slot`: it disagrees with Redis on a key whose first hash tag is empty and that holds a
 * later one (`x{}{y}`: Redis answers CLUSTER KEYSLOT 14166, cluster-key-slot 15133; test/topologies/clients.test.ts
 * compares both with a real cluster).
 * @internal
 */
export const keySlot = (key: string): number => {
  const bytes = Buffer.from(key, "utf8")
  const open = bytes.indexOf(0x7b)
  if (open >= 0) {
    const close = bytes.indexOf(0x7d, open + 1)
    if (close > open + 1) return crc16(bytes, open + 1, close) % SLOT_COUNT
  }
  return crc16(bytes, 0, bytes.length) % SLOT_COUNT
}

/** @internal */
export const isCluster = (client: Redis | Cluster): client is Cluster => (client as Cluster).isCluster === true

/**
 * The connections to the masters that own the 16384 slots, from the client's slot map. A prefix scan that skipped a
 * master would report success for a partial clear (or count), so this fails unless every slot has an owner and every
 * owner is connected: after a failover the slot map is refreshed first, and a later call succeeds.
 * @internal
 */
export const clusterMasters = (client: Cluster): Array<Redis> => {
  const connections = new Map<string, Redis>()
  for (const node of client.nodes("all")) connections.set(`${node.options.host}:${node.options.port}`, node)
  const owners = new Set<string>()
  for (let slot = 0; slot < SLOT_COUNT; slot++) {
    const owner = client.slots[slot]?.[0]
    if (owner === undefined) throw new Error("the cluster slot map does not cover every slot")
    owners.add(owner)
  }
  return Array.from(owners, (owner) => {
    const node = connections.get(owner)
    if (node === undefined || node.status === "end" || node.status === "close") {
      throw new Error("a cluster master is not connected")
    }
    return node
  })
}

/**
 * The failure domains of a cluster: the slot ranges of its shards (`slots 0-5460`), taken from the client's slot map
 * and recomputed when ioredis replaces it. A failover keeps the ranges, so a domain's label, and its cooldown,
 * survive the promotion of a replica. `""` (the whole store) while the slot map is not known yet.
 * @internal
 */
export const clusterDomains = (client: Cluster): ((key: string) => string) => {
  let seen: Array<ReadonlyArray<string> | undefined> = []
  let labels: Array<string> = []
  const rebuild = () => {
    const slots = client.slots
    seen = new Array(SLOT_COUNT)
    labels = new Array(SLOT_COUNT)
    let start = 0
    for (let slot = 0; slot <= SLOT_COUNT; slot++) {
      const owner = slot < SLOT_COUNT ? slots[slot]?.[0] : undefined
      if (slot === SLOT_COUNT || owner !== slots[start]?.[0]) {
        const label = slots[start]?.[0] === undefined ? "" : `slots ${start}-${slot - 1}`
        for (let s = start; s < slot; s++) labels[s] = label
        start = slot
      }
      if (slot < SLOT_COUNT) seen[slot] = slots[slot]
    }
  }
  return (key) => {
    const slot = keySlot(key)
    const owners = client.slots[slot]
    if (owners === undefined) return ""
    if (seen[slot] !== owners) rebuild()
    return labels[slot] ?? ""
  }
}
