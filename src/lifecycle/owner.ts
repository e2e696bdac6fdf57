import type { CampaignsRepository } from '../campaigns/repository.js'
import type { RedisClient } from '../redis/client.js'
import { entryCampaign, rawClaim, rawEvent } from '../redis/stream-entry.js'
import type { Keys } from '../redis/keys.js'

const PAGE = 1000

/** Pages through the campaign's partition stream until visit returns a value. */
async function scanStream<T>(redis: RedisClient, keys: Keys, campaignId: string,
  visit: (list: string[]) => T | undefined): Promise<T | undefined> {
  let start = '-'
  for (;;) {
    const entries = await redis.xrange(keys.streamOf(campaignId), start, '+', 'COUNT', PAGE)
    for (const [, flat] of entries) {
      const v = visit(flat)
      if (v !== undefined) return v
    }
    if (entries.length < PAGE) return undefined
    start = '(' + entries[entries.length - 1]![0]
  }
}

/** The user a not-yet-persisted claim of the campaign belongs to, from its partition stream. */
const ownerInStream = async (redis: RedisClient, keys: Keys, campaignId: string,
  claimId: string): Promise<string | null> => (await scanStream(redis, keys, campaignId, (flat) => {
  const c = rawClaim(flat) ?? rawEvent(flat)?.claim
  return c && c.claimId === claimId && c.campaignId === campaignId ? c.userId : undefined
})) ?? null

/**
 * claimId -> owner for an admin revoke, without a claimId index in Redis (which would cost ~100 B per
 * claim for a rare operation). A claim is a row once persisted, and sits in its partition stream until
 * then; it leaves the stream only after its row is committed. So: the database, then the stream (only
 * the backlog), then the database again for a claim persisted while the stream was being read.
 * The cancel script then checks the claim really is in that user's record.
 */
export async function findClaimOwner(redis: RedisClient, keys: Keys, repo: CampaignsRepository, campaignId: string,
  claimId: string): Promise<string | null> {
  return (await repo.claimOwner(campaignId, claimId))
    ?? (await ownerInStream(redis, keys, campaignId, claimId))
    ?? (await repo.claimOwner(campaignId, claimId))
}

/** True while any entry of the campaign (claim or lifecycle event) is still in its partition stream. */
export async function hasStreamEntries(redis: RedisClient, keys: Keys, campaignId: string): Promise<boolean> {
  return (await scanStream(redis, keys, campaignId, (flat) => (entryCampaign(flat) === campaignId ? true
    : undefined))) ?? false
}
