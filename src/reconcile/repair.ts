/**
 * The writing half of reconcile (--fix). Every change is one of three Lua scripts in the campaign's
 * hash slot, so each is atomic with respect to claim.lua; none deletes anything or lowers a counter.
 *
 * Order matters while claims keep coming:
 *  1. live state present: raise issued (and stock) first, so no claim can take a sequence the
 *     database or stream already holds while the records are being restored;
 *  2. give users back the claims Redis lost (restore-users.lua also raises issued over each batch);
 *  3. live state missing: only now create the campaign hash, with issued at the highest known sequence,
 *     in one script. Until then claims answer 503; after it they see the restored records (per-user
 *     limit) and continue after the highest sequence;
 *  4. re-enqueue LOST claims with their own claimId and sequence (the worker's insert is idempotent).
 */
import { publishCampaignChanged } from '../campaigns/events.js'
import { lostClaims, type Inspection, type ReconcileDeps } from './inspect.js'
import { writeLiveState } from './live-state.js'
import { encodeEventEntry } from '../redis/stream-entry.js'
import { reenqueueClaims } from './reenqueue.js'
import { restoreUserRecords, type ClaimRecord } from './restore-users.js'
import { scanClaims, scanStream } from './sources.js'

export interface RepairResult {
  liveState: 'created' | 'repaired' | null; restored: number; reenqueued: number; events: number }

export async function repairCampaign(deps: ReconcileDeps, ins: Inspection): Promise<RepairResult> {
  const { redis, db, keys, pageSize, progress } = deps
  const id = ins.report.campaignId
  const result: RepairResult = { liveState: null, restored: 0, reenqueued: 0, events: 0 }

  if (ins.hasLive && ins.repairLiveState) {
    const r = await writeLiveState(redis, keys, ins.campaign, ins.needIssued, false)
    if (r) result.liveState = 'repaired'
  }

  // Conflicted sequences too: restore-users.lua skips a claim its user's record already holds, so only the
  // holder missing from its own record is added (its per-user limit closes again; the conflict stays).
  const restoreCount = ins.restore.count() + ins.restoreHolders.count()
  const toRestore = (seq: number) => ins.restore.has(seq) || ins.restoreHolders.has(seq)
  if (restoreCount > 0) {
    progress.start(`restore ${id}`, restoreCount)
    const flush = async (batch: ClaimRecord[]) => {
      if (batch.length === 0) return
      const r = await restoreUserRecords(redis, keys, id, batch)
      result.restored += r.restored
      progress.add(batch.length)
    }
    // A record keeps the first entry of a claim it is given: the strongest state first (cancelled or
    // expired, from an event on its way or a row; then confirmed; then the claim as issued).
    const EVENT_MARK: Record<string, string> = { cancel: 'c', expire: 'x', confirm: 'f' }
    const passes: { stream: (type?: string) => boolean; rows: (mark?: string) => boolean }[] = [
      { stream: (type) => type === 'cancel' || type === 'expire', rows: (mark) => mark === 'c' || mark === 'x' },
      { stream: (type) => type === 'confirm', rows: (mark) => mark !== 'c' && mark !== 'x' },
      { stream: (type) => type === undefined, rows: () => false },
    ]
    for (const pass of passes) {
      for await (const { claims } of scanStream(redis, keys.streamOf(id), id, pageSize)) {
        await flush(claims.filter((c) => pass.stream(c.type) && toRestore(c.sequence))
          .map(({ type, ...c }) => (type ? { ...c, mark: EVENT_MARK[type]! } : c)))
      }
      for await (const rows of scanClaims(db, id, pageSize)) {
        await flush(rows.filter((r) => pass.rows(r.mark) && toRestore(r.sequence)))
      }
    }
    progress.stop()
  }

  if (!ins.hasLive) {
    const r = await writeLiveState(redis, keys, ins.campaign, ins.needIssued, true, ins.releasedRows,
      !deps.keepFence)
    if (r) result.liveState = r.created ? 'created' : 'repaired'
  }

  // A raised stock or a rebuilt hash can end a sold-out: API instances drop what they cached about it.
  if (result.liveState) await publishCampaignChanged(redis, keys, { type: 'rebuilt', campaignId: id })

  // A cancellation or expiry Redis made whose event never reached the database: the same event again
  // (a cancelled or expired record never changes back, so no check is needed; applying it is idempotent).
  // When it happened is in the marks hash (absent only if that was lost too: then now).
  for (const e of ins.unappliedEvents) {
    const at = Number(await redis.hget(keys.marks(id), e.claimId)) || Date.now()
    await redis.xadd(keys.streamOf(id), '*', ...encodeEventEntry(e.kind, { ...e, campaignId: id }, at))
    result.events++
  }

  const lostCount = ins.lost.count()
  if (lostCount > 0) {
    progress.start(`re-enqueue ${id}`, lostCount)
    for await (const batch of lostClaims(deps, id, ins.lost)) {
      result.reenqueued += await reenqueueClaims(redis, keys, id, batch)
      progress.add(batch.length)
    }
    progress.stop()
  }
  return result
}
