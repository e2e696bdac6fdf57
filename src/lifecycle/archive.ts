/**
 * Archive: a campaign that ended (closed, or sold out) leaves Redis once PostgreSQL holds all of it.
 *
 * 1. end-campaign.lua ends it in Redis (claims answer CLOSED, cancels CAMPAIGN_ENDED), so nothing new
 *    reaches the stream; refused while holds are open or the campaign still runs;
 * 2. every claim and lifecycle event must be persisted (none of the campaign's entries left in its stream,
 *    rows = sequences issued, released rows = units returned) and reconcile must find no drift;
 *    otherwise the end is undone (if this call made it) and the archive refused with the reason;
 * 3. the campaign is marked archived in PostgreSQL (from then on every read answers from there);
 * 4. its keys are UNLINKed: O(1) for the server's main thread whatever their size, the memory is freed
 *    by a background thread (lazyfree), so a 1M-user hash never blocks Redis.
 * Repeating it is safe: an archived campaign only has its keys removed again.
 */
import { sql } from 'drizzle-orm'
import type { RedisClient } from '../redis/client.js'
import type { Db } from '../db/client.js'
import type { CampaignRow, CampaignsRepository } from '../campaigns/repository.js'
import { publishCampaignChanged } from '../campaigns/events.js'
import type { Keys } from '../redis/keys.js'
import { inspectCampaign } from '../reconcile/inspect.js'
import { silentProgress } from '../reconcile/progress.js'
import { PAGE_SIZE } from '../reconcile/sources.js'
import { endCampaign, reopenCampaign } from './scripts.js'
import { hasStreamEntries } from './owner.js'

export interface ArchiveDeps { redis: RedisClient; db: Db; keys: Keys; campaigns: CampaignsRepository }

type ArchiveRefusal = 'CAMPAIGN_ACTIVE' | 'HOLDS_OPEN' | 'CLAIMS_PENDING' | 'RECONCILE_DRIFT'

export type ArchiveOutcome =
  | { kind: 'archived'; row: CampaignRow; issued: number; active: number; released: number; persisted: number }
  | { kind: 'not_found' }
  | { kind: 'refused'; code: ArchiveRefusal; reason: string }

async function removeLiveState(deps: ArchiveDeps, id: string): Promise<void> {
  const { redis, keys } = deps
  // The campaign hash first: from then on every route asks PostgreSQL, which says archived.
  await redis.unlink(keys.campaign(id))
  // Same hash tag, so one call on a cluster too; the idempotency and rate-limit keys expire by themselves.
  await redis.unlink(keys.users(id), keys.holds(id), keys.marks(id))
  await publishCampaignChanged(redis, keys, { type: 'archived', campaignId: id }).catch(() => {})
}

async function archivedOutcome(deps: ArchiveDeps, row: CampaignRow): Promise<ArchiveOutcome> {
  const t = await deps.campaigns.claimTotals(String(row.id))
  return { kind: 'archived', row, issued: t.maxSequence, active: row.activeClaims, released: t.released,
    persisted: t.rows }
}

export async function archiveCampaign(deps: ArchiveDeps, id: string): Promise<ArchiveOutcome> {
  const { redis, keys, campaigns } = deps
  const row = await campaigns.get(id)
  if (!row) return { kind: 'not_found' }
  if (row.archivedAt) {
    await removeLiveState(deps, id)
    return archivedOutcome(deps, row)
  }
  const ended = await endCampaign(redis, keys, id)
  if (ended.kind === 'unavailable') {
    return { kind: 'refused', code: 'RECONCILE_DRIFT',
      reason: 'the campaign has no live state in Redis: run reconcile --fix first' }
  }
  if (ended.kind === 'holds_open') return { kind: 'refused', code: 'HOLDS_OPEN',
    reason: `${ended.holds} hold(s) are still open: they must be confirmed or expire first` }
  if (ended.kind === 'running') return { kind: 'refused', code: 'CAMPAIGN_ACTIVE',
    reason: 'the campaign is neither closed nor sold out' }
  const madeNow = ended.now

  const refuse = async (code: ArchiveRefusal, reason: string): Promise<ArchiveOutcome> => {
    // A sold-out campaign that was still taking cancellations goes on doing so until the next attempt.
    if (madeNow) await reopenCampaign(redis, keys, id)
    return { kind: 'refused', code, reason }
  }
  if (await hasStreamEntries(redis, keys, id)) return refuse('CLAIMS_PENDING',
    'claims or cancellations of this campaign are still in its stream, not yet in PostgreSQL')
  const t = await campaigns.claimTotals(id)
  if (t.rows < ended.issued) return refuse('CLAIMS_PENDING',
    `${ended.issued - t.rows} of ${ended.issued} issued claims are not in PostgreSQL`)
  if (t.released !== ended.returned) return refuse('CLAIMS_PENDING',
    `PostgreSQL has ${t.released} cancelled or expired claims, Redis returned ${ended.returned} units`)
  const ins = await inspectCampaign({ redis, db: deps.db, keys, pageSize: PAGE_SIZE, progress: silentProgress }, row)
  if (ins.report.drift > 0) {
    const classes = Object.entries(ins.report.classes).filter(([c, v]) => c !== 'inFlight' && v.count > 0).map(([c,
      v]) => `${c} ${v.count}`)
    return refuse('RECONCILE_DRIFT',
      `reconcile finds drift (${classes.join(', ')}): run npm run reconcile -- --campaign ${id}`)
  }
  const marked = await campaigns.markArchived(id)
  await removeLiveState(deps, id)
  return archivedOutcome(deps, marked!)
}

/** Closed campaigns due for ARCHIVE_AFTER_S (the worker archives them). */
export async function campaignsDueForArchive(db: Db, afterS: number, limit = 20): Promise<string[]> {
  const rows = await db.execute(sql`SELECT id::text AS id FROM campaigns
    WHERE archived_at IS NULL AND closes_at IS NOT NULL AND closes_at + make_interval(secs => ${afterS}) <= now()
    ORDER BY closes_at LIMIT ${limit}`)
  return (rows as unknown as { id: string }[]).map((r) => r.id)
}
