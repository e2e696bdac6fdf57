import { randomUUID } from 'node:crypto'
import type { Keys } from '../redis/keys.js'
import type { RedisClient } from '../redis/client.js'
import { sha256Hex } from './settings.js'

const BATCH = 1000
const LOCK_MS = 60_000

/** The draw's order key of a ticket: the lowercase hex SHA-256 of "<seed>:<ticket>" (ascending wins). */
const drawKey = (seed: string, ticket: string): string => sha256Hex(`${seed}:${ticket}`)

/** Tickets in drawn order (ties, which SHA-256 does not produce in practice, by ticket). */
export function drawOrder<T extends { ticket: string }>(seed: string, entries: T[]): T[] {
  return entries.map((e) => ({ e, k: drawKey(seed, e.ticket) }))
    .sort((a, b) => (a.k < b.k ? -1 : a.k > b.k ? 1 : a.e.ticket < b.e.ticket ? -1 : 1)).map((x) => x.e)
}

/**
 * Runs a shuffle campaign's draw once its opensAt has passed (advance.lua says when: -2). The pre-queue
 * is fixed by then (line.lua gives a position to every later join). One instance draws, under a lock in
 * the campaign's slot; draw.lua refuses a batch out of turn, so a second drawer cannot interleave.
 * Returns false when another instance holds the lock.
 */
export async function runDraw(redis: RedisClient, keys: Keys, id: string, seed: string): Promise<boolean> {
  const lock = keys.queueDrawLock(id)
  const token = randomUUID()
  if (await redis.set(lock, token, 'PX', LOCK_MS, 'NX') !== 'OK') return false
  try {
    const pre = new Map<string, string>()
    let cursor = '0'
    do {
      const [next, flat] = await redis.hscan(keys.queueUsers(id), cursor, 'COUNT', BATCH)
      cursor = next
      for (let i = 0; i + 1 < flat.length; i += 2) {
        // A pre-queue record has no position yet: "ticket:joinedAtMs:".
        const m = /^([^:]*):\d+:$/.exec(flat[i + 1]!)
        if (m) pre.set(flat[i]!, m[1]!)
      }
    } while (cursor !== '0')
    const order = drawOrder(seed, [...pre].map(([userId, ticket]) => ({ userId, ticket })))
    for (let from = 0; from < order.length || from === 0; from += BATCH) {
      const batch = order.slice(from, from + BATCH)
      const last = from + BATCH >= order.length
      const [written] = await redis.fcfsQueueDraw(keys.campaign(id), keys.queueUsers(id), keys.queuePositions(id),
        keys.queueDraw(id), from + 1, last ? '1' : '0', ...batch.flatMap((e) => [e.userId, e.ticket]))
      if (written === -1) return false
      if (last) break
    }
    return true
  } finally {
    if (await redis.get(lock) === token) await redis.unlink(lock)
  }
}
