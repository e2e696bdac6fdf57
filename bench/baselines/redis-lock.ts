/**
 * Baseline (b): a Redis lock around check-then-write, as the Redisson approach in the second article:
 * SET lock token NX PX, then read stock/issued/user, then write, then release with compare-and-delete.
 * Waiters retry every millisecond (Redisson waits on a pub/sub channel; the cost on the holder is the same:
 * one campaign, one claim at a time, three round trips inside the lock).
 */
import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type { Redis, Result } from 'ioredis'
import { baselineKeys } from './keys.js'
import { checkIssued, type BaselineCheck, type BaselineOutcome } from './outcome.js'

const RELEASE_LUA = readFileSync(new URL('./release-lock.lua', import.meta.url), 'utf8')
const LOCK_TTL_MS = 2_000
const WAIT_MS = 10_000

declare module 'ioredis' {
  interface RedisCommander<Context> {
    benchReleaseLock(lock: string, token: string): Result<number, Context>
  }
}

export function defineReleaseLock(redis: Redis): void {
  redis.defineCommand('benchReleaseLock', { numberOfKeys: 1, lua: RELEASE_LUA })
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

export async function createRedisLockCampaign(redis: Redis, prefix: string, id: string, stock: number): Promise<void> {
  await redis.hset(baselineKeys(prefix, id).state, 'stock', stock, 'issued', 0)
}

export async function redisLockClaim(redis: Redis, prefix: string, id: string,
  userId: string): Promise<BaselineOutcome> {
  const k = baselineKeys(prefix, id)
  const token = randomUUID()
  const deadline = Date.now() + WAIT_MS
  while ((await redis.set(k.lock, token, 'PX', LOCK_TTL_MS, 'NX')) !== 'OK') {
    if (Date.now() > deadline) return { kind: 'busy' }
    await sleep(1)
  }
  try {
    const [stock, issued] = await redis.hmget(k.state, 'stock', 'issued')
    if (stock === null || issued === null) return { kind: 'not_found' }
    if (await redis.sismember(k.users, userId)) return { kind: 'at_limit' }
    if (Number(issued) >= Number(stock)) return { kind: 'sold_out' }
    const sequence = Number(issued) + 1
    await redis.multi().hset(k.state, 'issued', sequence).sadd(k.users, userId).rpush(k.issued,
      `${userId}:${sequence}`).exec()
    return { kind: 'issued', sequence }
  } finally {
    await redis.benchReleaseLock(k.lock, token)
  }
}

export async function checkRedisLock(redis: Redis, prefix: string, id: string): Promise<BaselineCheck> {
  const k = baselineKeys(prefix, id)
  return checkIssued(await readIssued(redis, k.issued), Number(await redis.hget(k.state, 'stock')))
}

export async function readIssued(redis: Redis, key: string): Promise<{ user: string; sequence: number }[]> {
  return (await redis.lrange(key, 0, -1)).map((s) => {
    const i = s.lastIndexOf(':')
    return { user: s.slice(0, i), sequence: Number(s.slice(i + 1)) }
  })
}
