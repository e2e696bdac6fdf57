import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { AppContext } from '../context.js'
import { ErrorSchema } from '../errors.js'
import { readLiveState, type LiveState } from './mirror.js'
import { CampaignIdParamsSchema, PublicCampaignSchema } from './schemas.js'

export function campaignState(live: LiveState, now = Date.now()): 'scheduled' | 'open' | 'sold_out' | 'closed' {
  if (live.closesAt !== null && now >= live.closesAt) return 'closed'
  if (live.issued >= live.stock) return 'sold_out'
  if (live.opensAt !== null && now < live.opensAt) return 'scheduled'
  return 'open'
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString())

export const publicCampaignRoutes: FastifyPluginAsyncTypebox<{ ctx: AppContext }> = async (app, { ctx }) => {
  app.get('/v1/campaigns/:id', {
    schema: { tags: ['campaigns'],
      operationId: 'getCampaign', security: [],
      summary: 'Public state of a campaign: remaining stock and scheduled/open/sold_out/closed',
      params: CampaignIdParamsSchema,
      response: { 200: PublicCampaignSchema, 400: ErrorSchema, 404: ErrorSchema, 503: ErrorSchema } },
  }, async (req) => {
    const live = await readLiveState(ctx.redis, ctx.keys, req.params.id)
    if (!live) throw await ctx.errorForMissing(req.params.id)
    return {
      id: req.params.id, name: live.name, remaining: Math.max(0, live.stock - live.issued),
      opensAt: iso(live.opensAt), closesAt: iso(live.closesAt), state: campaignState(live),
    }
  })
}
