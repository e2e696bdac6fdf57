import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { Keys } from '../redis/keys.js'
import type { RedisClient } from '../redis/client.js'
import type { Missing } from './lookup.js'
import { ErrorSchema } from '../errors.js'
import { campaignState, readLiveState, remainingOf } from '../redis/campaign-hash.js'
import { campaignNotFound, campaignUnavailable } from '../errors.js'
import { CampaignIdParamsSchema, PublicCampaignSchema } from './schemas.js'

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString())

export interface PublicCampaignRoutesOptions {
  redis: RedisClient
  keys: Keys
  /** Archived campaigns answer from PostgreSQL (src/campaigns/lookup.ts). */
  whyMissing: (id: string) => Promise<Missing>
}

export const publicCampaignRoutes: FastifyPluginAsyncTypebox<PublicCampaignRoutesOptions> = async (app, opts) => {
  app.get('/v1/campaigns/:id', {
    schema: { tags: ['campaigns'],
      operationId: 'getCampaign', security: [],
      summary: 'Public state of a campaign: remaining stock and scheduled/open/sold_out/closed',
      params: CampaignIdParamsSchema,
      response: { 200: PublicCampaignSchema, 400: ErrorSchema, 404: ErrorSchema, 503: ErrorSchema } },
  }, async (req) => {
    const live = await readLiveState(opts.redis, opts.keys, req.params.id)
    if (!live) {
      const m = await opts.whyMissing(req.params.id)
      if (m.kind === 'unknown') throw campaignNotFound(req.params.id)
      if (m.kind === 'lost') throw campaignUnavailable(req.params.id)
      const row = m.row
      return {
        id: req.params.id, name: row.name, remaining: Math.max(0, row.stock - row.activeClaims),
        opensAt: row.opensAt?.toISOString() ?? null, closesAt: row.closesAt?.toISOString() ?? null,
        state: 'archived' as const,
      }
    }
    return {
      id: req.params.id, name: live.name, remaining: remainingOf(live),
      opensAt: iso(live.opensAt), closesAt: iso(live.closesAt), state: campaignState(live),
    }
  })
}
