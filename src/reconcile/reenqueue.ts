import type { Keys } from '../redis/keys.js'
import type { ClaimRecord } from './restore-users.js'
import type { RedisClient } from '../redis/client.js'

/** XADDs LOST claims again (same claimId and sequence); returns how many the script confirmed and added. */
export async function reenqueueClaims(redis: RedisClient, keys: Keys, campaignId: string,
  claims: ClaimRecord[]): Promise<number> {
  if (claims.length === 0) return 0
  const quads: (string | number)[] = []
  for (const c of claims) quads.push(c.userId, c.claimId, c.sequence, c.claimedAt)
  return redis.fcfsReenqueue(keys.users(campaignId), keys.streamOf(campaignId), campaignId, ...quads)
}
