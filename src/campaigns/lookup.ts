import type { CampaignRow, CampaignsRepository } from './repository.js'
import { AppError, ErrorCode, campaignNotFound, campaignRecovering, campaignUnavailable } from '../errors.js'

const NEGATIVE_TTL_MS = 5_000

/** Why Redis has no live state for a campaign: never existed, archived (answer from PostgreSQL), or lost. */
export type Missing = { kind: 'unknown' } | { kind: 'archived'; row: CampaignRow } | { kind: 'lost' }

/**
 * Called only when Redis has no live state for a campaign: one database read tells 404 from an archived
 * campaign from 503. Unknown ids are remembered briefly so a flood of made-up ids cannot turn into a
 * flood of queries.
 */
export function createMissingCampaignResolver(repo: CampaignsRepository,
  /** Automatic recovery (src/recovery/): a lost campaign is rebuilt from PostgreSQL, and answers RECOVERING. */
  recover?: (id: string) => void) {
  const unknown = new Map<string, number>()
  async function whyMissing(id: string): Promise<Missing> {
    const now = Date.now()
    const until = unknown.get(id)
    if (until !== undefined && until > now) return { kind: 'unknown' }
    const row = await repo.get(id)
    if (row) {
      unknown.delete(id)
      return row.archivedAt ? { kind: 'archived', row } : { kind: 'lost' }
    }
    if (unknown.size > 10_000) unknown.clear()
    unknown.set(id, now + NEGATIVE_TTL_MS)
    return { kind: 'unknown' }
  }
  /** The answer of a claim: 404, 403 CLOSED (archived: the campaign ended for good) or 503. */
  async function errorForMissing(id: string): Promise<AppError> {
    const m = await whyMissing(id)
    if (m.kind === 'unknown') return campaignNotFound(id)
    if (m.kind === 'archived') return archivedClosed(m.row)
    if (recover) {
      recover(id)
      return campaignRecovering(id)
    }
    return campaignUnavailable(id)
  }
  return { whyMissing, errorForMissing }
}

function archivedClosed(row: CampaignRow): AppError {
  const at = (row.closesAt && row.closesAt < (row.archivedAt ?? new Date()) ? row.closesAt : row.archivedAt) ??
    new Date()
  return new AppError(403, ErrorCode.CLOSED, `campaign ${row.id} has ended and is archived`,
    { closesAt: at.toISOString() })
}
