import { userEntry } from '../redis/users-record.js'
import type { Keys } from '../redis/keys.js'
import type { RedisClient } from '../redis/client.js'

export interface ClaimRecord {
  userId: string; claimId: string; sequence: number; claimedAt: number
  /** The users-record mark of its lifecycle state (users-record.ts); none for a final claim. */
  mark?: string
}

/**
 * Adds the given claims to their users' records and raises issued to the highest of their sequences
 * (atomically). Returns how many were added and the counter after (null when the hash is missing).
 */
export async function restoreUserRecords(redis: RedisClient, keys: Keys, campaignId: string, claims: ClaimRecord[]):
  Promise<{ restored: number; issued: number | null }> {
  if (claims.length === 0) return { restored: 0, issued: null }
  let top = 0
  const pairs: string[] = []
  for (const c of claims) {
    if (c.sequence > top) top = c.sequence
    pairs.push(c.userId, userEntry(c))
  }
  const [restored, issued] = await redis.fcfsRestoreUsers(keys.campaign(campaignId), keys.users(campaignId), top,
    ...pairs)
  return { restored, issued: issued < 0 ? null : issued }
}
