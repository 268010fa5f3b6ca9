// cluster-key-slot (a dependency of ioredis, which uses it to route commands) ships no types
declare module "cluster-key-slot" {
  /** the Redis Cluster hash slot of a key (CRC16 of the key, or of its hash tag, modulo 16384) */
  const calculateSlot: (key: string | Buffer) => number
  export default calculateSlot
}
