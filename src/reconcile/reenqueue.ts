import { readFileSync } from 'node:fs'
import type { Result } from 'ioredis'
import type { Keys } from '../redis/keys.js'
import type { ClaimRecord } from './restore-users.js'
import type { RedisClient } from '../redis/client.js'

const REENQUEUE_LUA = readFileSync(new URL('./reenqueue.lua', import.meta.url), 'utf8')

declare module 'ioredis' {
  interface RedisCommander<Context> {
    fcfsReenqueue(users: string, stream: string, campaignId: string,
      ...quads: (string | number)[]): Result<number, Context>
  }
}

export function defineReenqueueScript(redis: RedisClient): void {
  redis.defineCommand('fcfsReenqueue', { numberOfKeys: 2, lua: REENQUEUE_LUA })
}

/** XADDs LOST claims again (same claimId and sequence); returns how many the script confirmed and added. */
export async function reenqueueClaims(redis: RedisClient, keys: Keys, campaignId: string,
  claims: ClaimRecord[]): Promise<number> {
  if (claims.length === 0) return 0
  const quads: (string | number)[] = []
  for (const c of claims) quads.push(c.userId, c.claimId, c.sequence, c.claimedAt)
  return redis.fcfsReenqueue(keys.users(campaignId), keys.streamOf(campaignId), campaignId, ...quads)
}
