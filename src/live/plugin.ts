import type { FastifyInstance, onRequestHookHandler } from 'fastify'
import type { Registry } from 'prom-client'
import type { RedisClient } from '../redis/client.js'
import type postgres from 'postgres'
import type { Keys } from '../redis/keys.js'
import { registerCampaignGauges } from './campaign-gauges.js'
import { createLiveHub } from './hub.js'
import { liveRoutes } from './routes.js'
import { createSnapshotter } from './snapshot.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Campaigns polled and viewers connected on this instance (tests and diagnostics). */
    liveStats: () => { campaigns: number; viewers: number }
  }
}

export interface LiveDeps {
  redis: RedisClient
  sql: postgres.Sql
  keys: Keys
  adminAuth: onRequestHookHandler
  /** This instance's claim answers by HTTP status (from its metrics). */
  answersByStatus: () => Promise<Map<number, number>>
  /** Whether the campaign exists and is archived, from PostgreSQL. */
  campaignStatus: (id: string) => Promise<'active' | 'archived' | 'unknown'>
  /** The API's Prometheus registry: gets fcfs_campaign_remaining. */
  registry: Registry
  intervalMs: number
  timeoutMs: number
  workerGroup: string
}

/** The live page and feed: one shared poller per watched campaign, ended when the server closes. */
export async function registerLive(app: FastifyInstance, deps: LiveDeps): Promise<void> {
  const { sql } = deps
  const hub = createLiveHub({
    intervalMs: deps.intervalMs,
    log: app.log,
    snapshotter: (id) => createSnapshotter({
      redis: deps.redis, keys: deps.keys, workerGroup: deps.workerGroup, timeoutMs: deps.timeoutMs,
      answersByStatus: deps.answersByStatus,
      async durableCounts(campaignId, stream) {
        const [row] = await sql<{ persisted: number; dead: number }[]>`
          SELECT (SELECT count(*)::int FROM claims WHERE campaign_id = ${campaignId}) AS persisted,
                 (SELECT count(*)::int FROM failed_claims WHERE stream = ${stream} AND resolved_at IS NULL) AS dead`
        return { persisted: row?.persisted ?? 0, deadLettered: row?.dead ?? 0 }
      },
    }, id, 5 * deps.intervalMs),
    whyMissing: async (id) => ((await deps.campaignStatus(id)) === 'active' ? 'unavailable' : 'gone'),
  })
  registerCampaignGauges(deps.registry, { redis: deps.redis, sql, keys: deps.keys, timeoutMs: deps.timeoutMs })
  app.decorate('liveStats', () => hub.stats())
  // Open event streams would keep the server from closing: end them first.
  app.addHook('preClose', (done) => { hub.closeAll('server shutting down'); done() })
  await app.register(liveRoutes, { hub, adminAuth: deps.adminAuth, campaignStatus: deps.campaignStatus,
    intervalMs: deps.intervalMs })
}
