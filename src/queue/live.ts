import type { Keys } from '../redis/keys.js'
import type { RedisClient } from '../redis/client.js'
import { parseLog } from './store.js'
import { percentile } from './report.js'

/** The waiting room's figures on the live page (null: the campaign has no queue). */
export interface LiveQueue {
  length: number; servingUpTo: number; admitted: number; expired: number
  /** From joining to admission, seconds (nearest rank over every admission so far). */
  waitP50: number | null; waitP95: number | null
}

/**
 * Reads a campaign's queue figures for the live feed: one pipelined round trip per snapshot. The
 * admission log is read incrementally (only entries since the last read), so a long drop costs no more.
 */
export function createLiveQueueReader(redis: RedisClient, keys: Keys, id: string) {
  let read = 0
  const waits: number[] = []
  return async function next(): Promise<LiveQueue | null> {
    const res = await redis.pipeline()
      .hmget(keys.campaign(id), 'qOrder', 'qLength', 'qServing', 'qAdmitted', 'qExpired')
      .lrange(keys.queueLog(id), read, -1)
      .exec()
    const [hashErr, hash] = res?.[0] ?? [new Error('pipeline aborted'), null]
    if (hashErr) throw hashErr
    const [order, length, serving, admitted, expired] = hash as (string | null)[]
    if (!order) return null
    const [logErr, entries] = res![1]!
    if (!logErr) {
      const list = entries as string[]
      read += list.length
      for (const e of parseLog(list)) {
        if (e.kind === 'admitted' && e.joinedAt !== null) waits.push((e.at - e.joinedAt) / 1000)
      }
      waits.sort((a, b) => a - b)
    }
    return { length: Number(length ?? 0), servingUpTo: Number(serving ?? 0), admitted: Number(admitted ?? 0),
      expired: Number(expired ?? 0), waitP50: percentile(waits, 50), waitP95: percentile(waits, 95) }
  }
}
