/**
 * Redis Cluster's key -> slot function (CRC16/XMODEM of the hash tag, mod 16384), and the placement of
 * partition tags on slots. Computed here rather than asked of Redis so that every process agrees on the
 * layout before it connects, single node included.
 */
export const CLUSTER_SLOTS = 16384

const TABLE = (() => {
  const t = new Uint16Array(256)
  for (let i = 0; i < 256; i++) {
    let c = i << 8
    for (let b = 0; b < 8; b++) c = c & 0x8000 ? ((c << 1) ^ 0x1021) & 0xffff : (c << 1) & 0xffff
    t[i] = c
  }
  return t
})()

/** CRC16/XMODEM, continuing from crc (the CRC of what came before s). */
function crc16(s: string, crc = 0): number {
  for (const byte of Buffer.from(s, 'utf8')) crc = ((crc << 8) & 0xffff) ^ TABLE[((crc >> 8) ^ byte) & 0xff]!
  return crc
}

/** The slot Redis Cluster assigns to a key: only the first non-empty {...} counts, when there is one. */
export function keySlot(key: string): number {
  const open = key.indexOf('{')
  if (open >= 0) {
    const close = key.indexOf('}', open + 1)
    if (close > open + 1) return crc16(key.slice(open + 1, close)) % CLUSTER_SLOTS
  }
  return crc16(key) % CLUSTER_SLOTS
}

const placed = new Map<string, string[]>()

/**
 * The hash tag of every partition: `<prefix>:p<n>:<salt>`, where salt is the first integer that puts the
 * tag's slot in the middle half of the partition's 1/partitions share of the slot space. `redis-cli
 * --cluster create` gives each master a contiguous, even range, so partitions then spread over the masters
 * as evenly as the numbers allow (12 partitions: 4 per master on 3 masters, 2 on 6), and deployments with
 * different prefixes on one cluster use different slots. Deterministic: every process computes the same.
 */
export function partitionTags(prefix: string, partitions: number): string[] {
  const cacheKey = `${prefix}\n${partitions}`
  const hit = placed.get(cacheKey)
  if (hit) return hit
  const share = CLUSTER_SLOTS / partitions
  const tags = Array.from({ length: partitions }, (_, p) => {
    const low = Math.ceil(p * share + share / 4)
    const high = Math.max(low, Math.floor((p + 1) * share - share / 4))
    const head = `${prefix}:p${p}:`
    const headCrc = crc16(head)
    for (let salt = 0; ; salt++) {
      let crc = headCrc
      // The salt is ASCII digits: fed as char codes, without a Buffer per try (1024 partitions take ~2M tries).
      for (const ch of String(salt)) crc = ((crc << 8) & 0xffff) ^ TABLE[((crc >> 8) ^ ch.charCodeAt(0)) & 0xff]!
      const slot = crc % CLUSTER_SLOTS
      if (slot >= low && slot <= high) return head + salt
    }
  })
  placed.set(cacheKey, tags)
  return tags
}
