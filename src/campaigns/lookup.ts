import type { CampaignsRepository } from './repository.js'
import { campaignNotFound, campaignUnavailable, type AppError } from '../errors.js'

const NEGATIVE_TTL_MS = 5_000

/**
 * Called only when Redis has no live state for a campaign: one database read tells 404 from 503.
 * Unknown ids are remembered briefly so a flood of made-up ids cannot turn into a flood of queries.
 */
export function createMissingCampaignResolver(repo: CampaignsRepository) {
  const unknown = new Map<string, number>()
  return async function errorForMissing(id: string): Promise<AppError> {
    const now = Date.now()
    const until = unknown.get(id)
    if (until !== undefined && until > now) return campaignNotFound(id)
    if (await repo.get(id)) {
      unknown.delete(id)
      return campaignUnavailable(id)
    }
    if (unknown.size > 10_000) unknown.clear()
    unknown.set(id, now + NEGATIVE_TTL_MS)
    return campaignNotFound(id)
  }
}
