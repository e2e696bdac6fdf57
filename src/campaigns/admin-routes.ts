import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { AppContext } from '../context.js'
import { AppError, ErrorCode, ErrorSchema, campaignNotFound, campaignUnavailable } from '../errors.js'
import { adminAuthenticator } from '../auth.js'
import { mirrorCampaign, readLiveState } from './mirror.js'
import { publishCampaignChanged } from './events.js'
import type { CampaignRow } from './repository.js'
import {
  AddStockBodySchema, AddStockResponseSchema, AdminCampaignSchema, CampaignIdParamsSchema, CampaignListQuerySchema, CampaignListSchema,
  CampaignSchema, CreateCampaignBodySchema,
} from './schemas.js'

const iso = (d: Date | null) => (d ? d.toISOString() : null)
export const campaignView = (c: CampaignRow) => ({
  id: String(c.id), name: c.name, stock: c.stock, perUserLimit: c.perUserLimit, opensAt: iso(c.opensAt), closesAt: iso(c.closesAt),
})

const errors = { 400: ErrorSchema, 401: ErrorSchema, 413: ErrorSchema, 415: ErrorSchema, 503: ErrorSchema, 500: ErrorSchema }

export const adminCampaignRoutes: FastifyPluginAsyncTypebox<{ ctx: AppContext }> = async (app, { ctx }) => {
  app.addHook('onRequest', adminAuthenticator(ctx.config))

  app.post('/admin/campaigns', {
    schema: { tags: ['admin'], body: CreateCampaignBodySchema, response: { 201: CampaignSchema, ...errors } },
  }, async (req, reply) => {
    const b = req.body
    const opensAt = b.opensAt ? new Date(b.opensAt) : null
    const closesAt = b.closesAt ? new Date(b.closesAt) : null
    if (opensAt && closesAt && opensAt >= closesAt) {
      throw new AppError(400, ErrorCode.VALIDATION, 'closesAt must be after opensAt')
    }
    // Database first: if the Redis mirror then fails, the campaign is unavailable (503), never oversold.
    const row = await ctx.campaigns.create({ name: b.name, stock: b.stock, perUserLimit: b.perUserLimit ?? 1, opensAt, closesAt })
    await mirrorCampaign(ctx.redis, ctx.keys, row, 'create')
    return reply.code(201).send(campaignView(row))
  })

  app.get('/admin/campaigns', {
    schema: {
      tags: ['admin'], summary: 'Campaigns, newest first (at most `limit`, default 100)',
      querystring: CampaignListQuerySchema, response: { 200: CampaignListSchema, ...errors },
    },
  }, async (req) => ({ campaigns: (await ctx.campaigns.list(Number(req.query.limit ?? 100))).map(campaignView) }))

  app.get('/admin/campaigns/:id', {
    schema: { tags: ['admin'], params: CampaignIdParamsSchema, response: { 200: AdminCampaignSchema, 404: ErrorSchema, ...errors } },
  }, async (req) => {
    const row = await ctx.campaigns.get(req.params.id)
    if (!row) throw campaignNotFound(req.params.id)
    const [live, persisted] = await Promise.all([readLiveState(ctx.redis, ctx.keys, req.params.id), ctx.campaigns.persistedCount(req.params.id)])
    if (!live) throw campaignUnavailable(req.params.id)
    return {
      ...campaignView(row), stock: live.stock, issued: live.issued, remaining: Math.max(0, live.stock - live.issued),
      persisted, pending: Math.max(0, live.issued - persisted),
    }
  })

  app.post('/admin/campaigns/:id/stock', {
    schema: { tags: ['admin'], params: CampaignIdParamsSchema, body: AddStockBodySchema, response: { 200: AddStockResponseSchema, 404: ErrorSchema, ...errors } },
  }, async (req) => {
    const { id } = req.params
    // Refuse before touching the database when the live state is gone: only reconcile may rebuild it.
    if (!(await ctx.redis.exists(ctx.keys.campaign(id)))) {
      if (!(await ctx.campaigns.get(id))) throw campaignNotFound(id)
      throw campaignUnavailable(id)
    }
    const row = await ctx.campaigns.addStock(id, req.body.add)
    if (!row) throw campaignNotFound(id)
    const live = await mirrorCampaign(ctx.redis, ctx.keys, row, 'update')
    if (!live) throw campaignUnavailable(id)
    // Every instance (this one synchronously, the others through pub/sub) stops answering 410 locally.
    ctx.soldOut.forget(id)
    // The stock is added already: failing the request now would invite a second addition on retry.
    await publishCampaignChanged(ctx.redis, ctx.keys, { type: 'stock-added', campaignId: id })
      .catch((err: Error) => req.log.warn({ err }, 'stock-added event not published; other instances may answer 410 until SOLD_OUT_CACHE_MS passes'))
    return { stock: live.stock, remaining: Math.max(0, live.stock - live.issued) }
  })
}
