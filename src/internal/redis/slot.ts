/**
 * Redis Cluster key slots, as the Redis Cluster specification defines them: CRC16 (XMODEM: polynomial 0x1021, initial
 * value 0) of the key's UTF-8 bytes, modulo 16384; when the key holds a `{` followed by a `}` with at least one byte
 * between them, only the bytes between the first `{` and the first `}` after it are hashed (the hash tag).
 */

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

/** @internal */
export const SLOT_COUNT = 16384

/** @internal */
export const keySlot = (key: string): number => {
  const bytes = Buffer.from(key, "utf8")
  const open = bytes.indexOf(0x7b)
  if (open >= 0) {
    const close = bytes.indexOf(0x7d, open + 1)
    if (close > open + 1) return crc16(bytes, open + 1, close) % SLOT_COUNT
  }
  return crc16(bytes, 0, bytes.length) % SLOT_COUNT
}
