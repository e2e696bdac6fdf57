/**
 * Hands-free recovery (issue 19). Every campaign hash carries the run_id of the Redis process it was last
 * verified on (campaign-hash.lua `node`). A restart (empty, from a truncated AOF, or clean) or a failover
 * puts the campaign on a process with another run_id, so from its very first claim claim.lua refuses it
 * (503 RECOVERING): the fence is in the data and in the script, so it holds on every API instance at once
 * and needs no detection in time. A campaign whose hash is gone (a Redis restarted empty) is fenced too:
 * the claim route answers RECOVERING instead of issuing from nothing.
 *
 * Each API instance looks for fenced campaigns every RECOVERY_INTERVAL_MS, and at once when a claim meets
 * one. One instance per campaign repairs it, under a lease in the campaign's slot (fence.lua): reconcile's
 * own inspect + repair (PostgreSQL ahead: issued raised and the users' records restored; no live state:
 * rebuilt from the database), then the fence is lifted by writing the new run_id. The others find the
 * lease taken and wait, then find the campaign verified. What was done is a row in `recoveries`
 * (`npm run reconcile` lists them).
 */
import { randomBytes, randomUUID } from 'node:crypto'
import { hostname } from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import { and, asc, eq, gt, isNull } from 'drizzle-orm'
import type { FastifyBaseLogger } from 'fastify'
import type { Db } from '../db/client.js'
import { campaigns, recoveries } from '../db/schema.js'
import type { CampaignRow } from '../campaigns/repository.js'
import { publishCampaignChanged } from '../campaigns/events.js'
import type { Keys } from '../redis/keys.js'
import { isCluster, masters, type RedisClient } from '../redis/client.js'
import { readIssued } from '../redis/campaign-hash.js'
import { evictedKeys } from '../redis/eviction.js'
import { inspectCampaign, type Inspection, type ReconcileDeps } from '../reconcile/inspect.js'
import { repairCampaign } from '../reconcile/repair.js'
import { CLASS_NAMES } from '../reconcile/report.js'
import { silentProgress } from '../reconcile/progress.js'
import { PAGE_SIZE, claimStats } from '../reconcile/sources.js'

/** A lease outlives a stalled repairer by this much; renewed every third of it while the repair runs. */
const LEASE_MS = 15_000
/** A campaign created this recently may not be mirrored yet: the periodic pass leaves its missing hash alone. */
const NEW_CAMPAIGN_GRACE_MS = 10_000
/** PostgreSQL may still commit rows the worker read from the failed node: checked again this many times. */
const LATE_ROW_PASSES = 3

export interface RecovererOptions {
  redis: RedisClient
  db: Db
  keys: Keys
  log: FastifyBaseLogger
  intervalMs: number
  /** Why Redis must not be repaired now ('' when it may): an evicting policy would drop the repair too. */
  unsafe: () => string
  /**
   * The fence stays up at least this long after a repair starts (PG_STATEMENT_TIMEOUT_MS): a batch a worker
   * read before the loss can still commit that late, and issued must end above its rows.
   */
  lateGraceMs: number
}

export interface Recoverer {
  /** A claim met a fenced or missing campaign: look at it now (deduplicated). */
  kick(campaignId: string): void
  close(): Promise<void>
}

type Outcome = 'recovered' | 'verified' | 'waiting' | 'skipped'

export function startRecoverer(opts: RecovererOptions): Recoverer {
  const { redis, db, keys, log } = opts
  const instance = `${hostname()}:${process.pid}:${randomBytes(2).toString('hex')}`
  // keepFence: a hash the repair rebuilds stays fenced until this recoverer lifts it (after the late rows).
  const deps: ReconcileDeps = { redis, db, keys, pageSize: PAGE_SIZE, progress: silentProgress, keepFence: true }
  const running = new Map<string, Promise<Outcome>>()
  let closed = false
  let timer: NodeJS.Timeout | undefined

  const fence = (id: string, mode: 'check' | 'acquire' | 'renew' | 'lift', token = '') =>
    redis.fcfsRecovery(keys.campaign(id), keys.recoveryLease(id), mode, token, LEASE_MS)

  async function repair(row: CampaignRow, token: string): Promise<void> {
    const id = String(row.id)
    const startedAt = new Date()
    // Where the fenced time goes (ms since the start, in the log line).
    const trace: string[] = []
    const mark = (what: string) => trace.push(`${what} ${Date.now() - startedAt.getTime()}`)
    let ins: Inspection = await inspectCampaign(deps, row)
    mark('inspected')
    const reason = ins.hasLive ? 'checked' : 'rebuilt'
    const found: Record<string, number> = {}
    for (const c of CLASS_NAMES) {
      if (c !== 'inFlight' && ins.report.classes[c].count > 0) found[c] = ins.report.classes[c].count
    }
    let restored = 0
    let reenqueued = 0
    let liveState: string | null = null
    const lateRows = async () => {
      const [stats, issued] = await Promise.all([claimStats(db, id), readIssued(redis, keys, id)])
      mark('late-check')
      return issued !== null && stats.maxSequence <= issued ? null : { max: stats.maxSequence, issued }
    }
    const settle = async () => {
      for (let pass = 0; ; pass++) {
        if (ins.report.drift > 0) {
          const r = await repairCampaign(deps, ins)
          restored += r.restored
          reenqueued += r.reenqueued
          liveState = r.liveState ?? liveState
          mark('repaired')
        }
        // A batch the worker read from the failed node may commit after the scan: issued must stay above every
        // row before the fence lifts, or the next claim would take a sequence PostgreSQL holds.
        const late = await lateRows()
        if (!late) return
        if (pass + 1 >= LATE_ROW_PASSES) throw new Error(`campaign ${id}: PostgreSQL holds sequence ` +
          `${late.max} above issued ${late.issued} after ${LATE_ROW_PASSES} repairs`)
        ins = await inspectCampaign(deps, row)
      }
    }
    await settle()
    // Such a batch commits within about the statement bound of its attempt: wait that out, then look again at
    // every row, not only above issued. Batches commit in any order, so a late row may carry a sequence below
    // one already restored (seen: one claim a campaign left out of its user's record, issued and rows equal).
    const wait = opts.lateGraceMs - (Date.now() - startedAt.getTime())
    if (wait > 0) {
      await sleep(wait)
      mark('grace')
    }
    ins = await inspectCampaign(deps, row)
    mark('reinspected')
    await settle()
    const lifted = await fence(id, 'lift', token)
    mark('lifted')
    if (lifted[0] !== 1) throw new Error(`campaign ${id}: the recovery lease was lost before the fence was lifted`)
    const node = await redis.hget(keys.campaign(id), 'node') ?? ''
    // Instances drop what they cached (a sold-out answer from the stale counter).
    await publishCampaignChanged(redis, keys, { type: 'rebuilt', campaignId: id }).catch(() => {})
    await db.insert(recoveries).values({ campaignId: row.id, node, reason, instance, startedAt, found, restored,
      reenqueued, liveState })
    log.warn({ campaignId: id, reason, found, restored, reenqueued, liveState, node,
      ms: Date.now() - startedAt.getTime(), steps: trace.join(', ') },
    'campaign recovered after a Redis restart or failover; fence lifted')
  }

  async function recover(id: string, fromClaim: boolean): Promise<Outcome> {
    const row = (await db.select().from(campaigns).where(eq(campaigns.id, BigInt(id))))[0]
    if (!row || row.archivedAt) return 'skipped'
    const [live, verified] = await fence(id, 'check')
    if (verified === 1) return 'verified'
    if (live === 0 && !fromClaim && Date.now() - row.createdAt.getTime() < NEW_CAMPAIGN_GRACE_MS) return 'skipped'
    const problem = opts.unsafe()
    if (problem) {
      log.error({ campaignId: id, problem }, 'campaign fenced; recovery waits for a safe eviction policy')
      return 'skipped'
    }
    // As reconcile --fix: after evictions the answered claims may be gone from Redis, the stream and the
    // database alike, so the campaign stays fenced for a person (docs/operations.md, "Redis evicted keys").
    const evicted = await evictedKeys(redis)
    if (evicted > 0) {
      log.error({ campaignId: id, evicted }, 'campaign fenced; Redis evicted keys, so it is not rebuilt automatically')
      return 'skipped'
    }
    const token = `${instance}:${randomUUID()}`
    const got = await fence(id, 'acquire', token)
    if (got[0] === 2) return 'verified'
    if (got[0] === 0) return 'waiting' // another instance repairs it
    const renew = setInterval(() => { fence(id, 'renew', token).catch(() => {}) }, LEASE_MS / 3)
    try {
      await repair(row, token)
      return 'recovered'
    } finally {
      clearInterval(renew)
    }
  }

  function run(id: string, fromClaim: boolean): Promise<Outcome> {
    const current = running.get(id)
    if (current) return current
    const p = recover(id, fromClaim).catch((err: Error) => {
      log.error({ err, campaignId: id }, 'automatic recovery failed; the campaign stays fenced, retried')
      return 'skipped' as const
    }).finally(() => running.delete(id))
    running.set(id, p)
    return p
  }

  /**
   * The run_id of the master serving each campaign, read once per sweep per master (INFO server), so a sweep
   * costs Redis one HMGET per campaign; the atomic check is fence.lua's, once a campaign looks fenced.
   */
  async function runIdOf(): Promise<(id: string) => string | undefined> {
    const byNode = new Map<string, string>()
    await Promise.all(masters(redis).map(async (node) => {
      const id = /run_id:(\w+)/.exec(await node.info('server'))?.[1]
      if (id) byNode.set(`${node.options.host}:${node.options.port}`, id)
    }))
    if (!isCluster(redis)) return () => [...byNode.values()][0]
    const slots = redis.slots
    return (id) => {
      const owner = slots[keys.slotOf(keys.partitionOf(id))]?.[0]
      return owner === undefined ? undefined : byNode.get(owner)
    }
  }

  /** Every live campaign's fence, checked in pages; fenced ones are repaired (a few at a time). */
  async function sweep(): Promise<void> {
    const nodeOf = await runIdOf()
    let after = 0n
    for (;;) {
      const rows = await db.select({ id: campaigns.id }).from(campaigns)
        .where(and(gt(campaigns.id, after), isNull(campaigns.archivedAt))).orderBy(asc(campaigns.id)).limit(100)
      // A node that does not answer (a failover in progress) leaves its campaigns for the next sweep.
      const states = await Promise.allSettled(rows.map((r) => redis.hmget(keys.campaign(String(r.id)), 'stock',
        'perUserLimit', 'issued', 'node')))
      const fenced = rows.filter((r, i) => {
        const s = states[i]!
        if (s.status !== 'fulfilled') return false
        const [stock, limit, issued, node] = s.value
        return stock == null || limit == null || issued == null || node !== nodeOf(String(r.id))
      }).map((r) => String(r.id))
      for (let i = 0; i < fenced.length; i += 4) await Promise.all(fenced.slice(i, i + 4).map((id) => run(id, false)))
      if (rows.length < 100) return
      after = rows[rows.length - 1]!.id
    }
  }

  const schedule = () => {
    if (closed) return
    timer = setTimeout(() => {
      sweep().catch((err: Error) => log.debug({ err }, 'recovery sweep failed (Redis or PostgreSQL away); retried'))
        .finally(schedule)
    }, opts.intervalMs)
    timer.unref()
  }
  schedule()

  return {
    kick(id) {
      if (!closed) void run(id, true)
    },
    async close() {
      closed = true
      clearTimeout(timer)
      await Promise.allSettled(running.values())
    },
  }
}
