import { Gauge, type Registry } from 'prom-client'
import type { RedisClient } from '../redis/client.js'
import type postgres from 'postgres'
import type { Keys } from '../redis/keys.js'
import { withTimeout } from '../timeout.js'
import { readLiveState, remainingOf } from '../redis/campaign-hash.js'

// Bounds the series count: the dashboards show the current drops, not every campaign ever made.
const MAX_CAMPAIGNS = 50

/**
 * fcfs_campaign_remaining{campaign}: the stock left in Redis for the newest campaigns that are not over
 * (no end, or ended within the last hour). Read when Prometheus scrapes: one PostgreSQL query for the ids,
 * then one HMGET per campaign (each in its own slot, so this also works on a Redis Cluster).
 */
export function registerCampaignGauges(registry: Registry,
  deps: { redis: RedisClient; sql: postgres.Sql; keys: Keys; timeoutMs: number }): void {
  const { redis, sql, keys } = deps
  new Gauge({
    name: 'fcfs_campaign_remaining',
    help: `Stock left per campaign (Redis), for the ${MAX_CAMPAIGNS} newest campaigns open or closed within the hour;`
      + ' same on every API instance, aggregate with max',
    labelNames: ['campaign'] as const,
    registers: [registry],
    async collect() {
      try {
        const rows = await withTimeout(sql<{ id: bigint }[]>`
          SELECT id FROM campaigns
          WHERE (closes_at IS NULL OR closes_at > now() - interval '1 hour') AND archived_at IS NULL
          ORDER BY id DESC LIMIT ${MAX_CAMPAIGNS}`, deps.timeoutMs, 'campaign ids')
        const ids = rows.map((r) => String(r.id))
        const reads = Promise.all(ids.map((id) => readLiveState(redis, keys, id)))
        const values = await withTimeout(reads, deps.timeoutMs, 'campaign stock')
        this.reset()
        ids.forEach((id, i) => {
          const live = values[i]
          if (live) this.set({ campaign: id }, remainingOf(live))
        })
      } catch {
        // A scrape during an outage keeps the last values; fcfs_backend_up and /readyz tell the outage.
      }
    },
  })
}
