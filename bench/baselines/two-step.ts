/**
 * Baseline (c): the course's approach. Round trip 1 is the set check (SADD answers whether the user was
 * new), round trip 2 is INCR on the issued counter, compared with the stock; a winner is then recorded
 * (RPUSH, standing in for the course's message to a consumer). Each step is atomic on its own, the pair
 * is not: this is what the bench's correctness check looks at.
 */
import type { Redis } from 'ioredis'
import { baselineKeys } from './keys.js'
import { readIssued } from './redis-lock.js'
import { checkIssued, type BaselineCheck, type BaselineOutcome } from './outcome.js'

export async function createTwoStepCampaign(redis: Redis, prefix: string, id: string, stock: number): Promise<void> {
  await redis.set(baselineKeys(prefix, id).stock, stock)
}

/** The course keeps the stock in the application; here it is read once per campaign and process. */
export function createTwoStep(redis: Redis, prefix: string) {
  const stocks = new Map<string, number>()
  return async function twoStepClaim(id: string, userId: string): Promise<BaselineOutcome> {
    const k = baselineKeys(prefix, id)
    let stock = stocks.get(id)
    if (stock === undefined) {
      const v = await redis.get(k.stock)
      if (v === null) return { kind: 'not_found' }
      stocks.set(id, (stock = Number(v)))
    }
    if ((await redis.sadd(k.users, userId)) === 0) return { kind: 'at_limit' }
    const n = await redis.incr(k.counter)
    if (n > stock) return { kind: 'sold_out' }
    await redis.rpush(k.issued, `${userId}:${n}`)
    return { kind: 'issued', sequence: n }
  }
}

export async function checkTwoStep(redis: Redis, prefix: string, id: string): Promise<BaselineCheck> {
  const k = baselineKeys(prefix, id)
  return checkIssued(await readIssued(redis, k.issued), Number(await redis.get(k.stock)))
}
