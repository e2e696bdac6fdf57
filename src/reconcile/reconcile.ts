/** reconcile over every campaign (or one): inspect, optionally repair, then inspect again to prove it. */
import { and, asc, desc, eq, gt, isNull, sql } from 'drizzle-orm'
import type { Db } from '../db/client.js'
import { campaigns, recoveries } from '../db/schema.js'
import type { CampaignRow } from '../campaigns/repository.js'
import type { Keys } from '../redis/keys.js'
import { inspectCampaign, lostClaims, exampleOf, type ReconcileDeps } from './inspect.js'
import { repairCampaign } from './repair.js'
import { addExample, CLASS_NAMES, MAX_EXAMPLES, type CampaignReport, type ClassName, type RecoveryReport,
  type RunReport } from './report.js'
import { silentProgress, type Progress } from './progress.js'
import { PAGE_SIZE } from './sources.js'
import { assertNoEviction, evictedKeys } from '../redis/eviction.js'
import type { RedisClient } from '../redis/client.js'
import { defineScripts } from '../redis/scripts.js'

export interface ReconcileOptions {
  campaignId?: string
  fix?: boolean
  pageSize?: number
  progress?: Progress
  /** Called with each campaign's report as soon as it is done (the table prints as it goes). */
  onCampaign?: (r: CampaignReport) => void
  /** REDIS_EVICTION_POLICY_ACK: accepts an unknown policy (CONFIG GET refused). */
  evictionPolicyAck?: string
}

class CampaignNotFoundError extends Error {}

async function* campaignsToCheck(db: Db, only?: string): AsyncGenerator<CampaignRow> {
  if (only !== undefined) {
    const [row] = await db.select().from(campaigns).where(eq(campaigns.id, BigInt(only)))
    if (!row) throw new CampaignNotFoundError(`campaign ${only} does not exist in the database`)
    if (row.archivedAt) return
    yield row
    return
  }
  let after = 0n
  for (;;) {
    // Archived campaigns have no live state on purpose: nothing to compare, nothing to rebuild.
    const rows = await db.select().from(campaigns).where(and(gt(campaigns.id, after),
      isNull(campaigns.archivedAt))).orderBy(asc(campaigns.id)).limit(100)
    for (const row of rows) yield row
    if (rows.length < 100) return
    after = rows[rows.length - 1]!.id
  }
}

/** Runs the whole check; throws on an infrastructure error (the caller maps that to exit code 2). */
export async function reconcile(redis: RedisClient, db: Db, keys: Keys,
  opts: ReconcileOptions = {}): Promise<Omit<RunReport, 'elapsedMs' | 'peakRssBytes'>> {
  defineScripts(redis)
  // Both sides must answer before anything is judged: an empty database must not make a dead Redis "agree".
  await redis.ping().catch((err: Error) => { throw new Error(`Redis unreachable: ${err.message}`) })
  await db.execute(sql`select 1`).catch((err: Error) => {
    throw new Error(`database unreachable: ${(err.cause as Error | undefined)?.message ?? err.message}`)
  })
  // An evicting policy: refuse to run at all (exit 2). Keys evicted before (evicted_keys > 0) are evidence
  // that answered claims may be gone from Redis, the stream and the database alike: a rebuild from the
  // rows would hand the same sequences out again, so --fix repairs nothing while the evidence stands.
  await assertNoEviction(redis, opts.evictionPolicyAck)
  const evicted = await evictedKeys(redis)
  const deps: ReconcileDeps = { redis, db, keys, pageSize: opts.pageSize ?? PAGE_SIZE,
    progress: opts.progress ?? silentProgress }
  const fix = opts.fix ?? false
  const reports: CampaignReport[] = []
  const totals = Object.fromEntries(CLASS_NAMES.map((c) => [c, 0])) as Record<ClassName, number>
  let unresolved = 0

  for await (const campaign of campaignsToCheck(db, opts.campaignId)) {
    const ins = await inspectCampaign(deps, campaign)
    const report = ins.report
    const id = report.campaignId
    // LOST examples come from a second look at the users hash (detection keeps only a bitset).
    if (report.classes.lost.count > 0) {
      for await (const batch of lostClaims(deps, id, ins.lost)) {
        for (const c of batch) addExample(report.classes.lost, exampleOf(c))
        if (report.classes.lost.examples.length >= MAX_EXAMPLES) break
      }
    }
    if (evicted > 0 && report.drift > 0) {
      report.classes.evicted.count = 1
      addExample(report.classes.evicted, {
        detail: `Redis evicted ${evicted} key(s); this campaign's state cannot be trusted to rebuild from`,
      })
      report.drift += 1
    }
    if (report.drift > 0 && fix && evicted > 0) {
      report.remaining = report.drift
      report.remainingClasses = {}
      for (const c of CLASS_NAMES) {
        if (c !== 'inFlight' && report.classes[c].count > 0) report.remainingClasses[c] = report.classes[c].count
      }
    } else if (report.drift > 0 && fix) {
      await repairCampaign(deps, ins)
      const after = await inspectCampaign(deps, campaign)
      report.remaining = after.report.drift
      report.remainingClasses = {}
      for (const c of CLASS_NAMES) {
        const left = after.report.classes[c].count
        if (c !== 'inFlight' && left > 0) report.remainingClasses[c] = left
        if (c !== 'inFlight') report.classes[c].fixed = Math.max(0, report.classes[c].count - left)
      }
    } else if (fix) {
      report.remaining = 0
      report.remainingClasses = {}
    }
    for (const c of CLASS_NAMES) totals[c] += report.classes[c].count
    unresolved += fix ? (report.remaining ?? 0) : report.drift
    reports.push(report)
    opts.onCampaign?.(report)
  }
  const exitCode = unresolved > 0 || evicted > 0 ? 1 : 0
  return { ok: exitCode === 0, exitCode, fix, campaigns: reports, totals, evictedKeys: evicted,
    recoveries: await latestRecoveries(db, opts.campaignId) }
}

/** What the automatic recovery did lately (src/recovery/): an audit, nothing to act on. */
async function latestRecoveries(db: Db, campaignId?: string): Promise<RecoveryReport[]> {
  const rows = await db.select().from(recoveries)
    .where(campaignId === undefined ? undefined : eq(recoveries.campaignId, BigInt(campaignId)))
    .orderBy(desc(recoveries.finishedAt)).limit(20)
  return rows.map((r) => ({ campaignId: String(r.campaignId), reason: r.reason, node: r.node, instance: r.instance,
    startedAt: r.startedAt.toISOString(), finishedAt: r.finishedAt.toISOString(),
    found: r.found as Record<string, number>, restored: r.restored, reenqueued: r.reenqueued, liveState: r.liveState }))
}
