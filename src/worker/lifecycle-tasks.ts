import { setTimeout as sleep } from 'node:timers/promises'
import { and, isNotNull, isNull } from 'drizzle-orm'
import type { RedisClient } from '../redis/client.js'
import type { Logger } from 'pino'
import type { Config } from '../config.js'
import type { Db } from '../db/client.js'
import { campaigns } from '../db/schema.js'
import type { Keys } from '../redis/keys.js'
import { createCampaignsRepository } from '../campaigns/repository.js'
import { sweepHolds } from '../lifecycle/scripts.js'
import { errorText } from './persist.js'
import type { WorkerMetrics } from './metrics.js'

const CAMPAIGN_LIST_MS = 1000
const ARCHIVE_EVERY_MS = 10_000

/**
 * The worker's timed lifecycle work. Hold expiry: every HOLD_SWEEP_MS, sweep-holds.lua for each campaign
 * with holds (the list comes from PostgreSQL, refreshed each second); the script is atomic and
 * idempotent, so every worker may run it. Archive: with ARCHIVE_AFTER_S set, campaigns closed that long
 * ago are archived (a refusal is logged and retried on the next round).
 */
export function createLifecycleTasks(opts: {
  config: Config; redis: RedisClient; db: Db; keys: Keys; log: Logger; metrics: WorkerMetrics }) {
  const { config, redis, db, keys, log, metrics } = opts
  const repo = createCampaignsRepository(db)
  let stopping = false
  let holdCampaigns: string[] = []
  let listedAt = 0
  const loops: Promise<void>[] = []
  const wake = new AbortController()

  async function sweepOnce(): Promise<void> {
    if (Date.now() - listedAt >= CAMPAIGN_LIST_MS) {
      const rows = await db.select({ id: campaigns.id }).from(campaigns)
        .where(and(isNotNull(campaigns.holdSeconds), isNull(campaigns.archivedAt)))
      holdCampaigns = rows.map((r) => String(r.id))
      listedAt = Date.now()
    }
    for (const id of holdCampaigns) {
      if (stopping) return
      const r = await sweepHolds(redis, keys, id)
      if (r && r.expired > 0) {
        metrics.holdsExpired.inc(r.expired)
        log.info({ campaignId: id, expired: r.expired, open: r.open }, 'holds expired')
      }
    }
  }

  async function archiveOnce(): Promise<void> {
    // Loaded only when ARCHIVE_AFTER_S is on: it pulls in reconcile, which a worker does not need to start.
    const { archiveCampaign, campaignsDueForArchive } = await import('../lifecycle/archive.js')
    for (const id of await campaignsDueForArchive(db, config.ARCHIVE_AFTER_S)) {
      if (stopping) return
      const o = await archiveCampaign({ redis, db, keys, campaigns: repo }, id)
      if (o.kind === 'archived') {
        metrics.archived.inc()
        log.info({ campaignId: id, issued: o.issued, active: o.active }, 'campaign archived')
      } else if (o.kind === 'refused') {
        log.info({ campaignId: id, code: o.code, reason: o.reason }, 'campaign not archived yet')
      }
    }
  }

  async function every(what: string, ms: number, fn: () => Promise<void>): Promise<void> {
    let warnedAt = 0
    while (!stopping) {
      try {
        await fn()
      } catch (err) {
        // At most one line per 10 s while a backend is down (the sweep runs every few hundred ms).
        if (Date.now() - warnedAt >= 10_000) {
          warnedAt = Date.now()
          log.warn({ what, err: errorText(err) }, `${what} failed`)
        }
      }
      await sleep(ms, undefined, { signal: wake.signal }).catch(() => {})
    }
  }

  return {
    start(): void {
      loops.push(every('hold sweep', config.HOLD_SWEEP_MS, sweepOnce))
      if (config.ARCHIVE_AFTER_S > 0) loops.push(every('archive', Math.min(ARCHIVE_EVERY_MS,
        config.ARCHIVE_AFTER_S * 1000), archiveOnce))
    },
    async stop(): Promise<void> {
      stopping = true
      wake.abort()
      await Promise.all(loops)
    },
  }
}
