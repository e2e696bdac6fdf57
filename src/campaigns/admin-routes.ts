import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { Authenticator } from '../auth.js'
import type { Db } from '../db/client.js'
import type { Keys } from '../redis/keys.js'
import type { RedisClient } from '../redis/client.js'
import type { FastifyBaseLogger } from 'fastify'
import { Type } from 'typebox'
import { AppError, ErrorCode, ErrorSchema, campaignEnded, campaignNotFound, campaignUnavailable, errorBody }
  from '../errors.js'
import { createAdminIdempotency } from './idempotency.js'
import { mirrorCampaign } from './mirror.js'
import { campaignState, readLiveState, remainingOf } from '../redis/campaign-hash.js'
import { publishCampaignChanged } from './events.js'
import { queueColumns, queueView } from '../queue/settings.js'
import type { CampaignRow, CampaignsRepository } from './repository.js'
import {
  AddStockBodySchema, AddStockResponseSchema, AdminCampaignSchema, CampaignIdParamsSchema, CampaignListQuerySchema,
  CampaignListSchema,
  CampaignSchema, CreateCampaignBodySchema, STOCK_MAX,
} from './schemas.js'

const iso = (d: Date | null) => (d ? d.toISOString() : null)
const campaignView = (c: CampaignRow) => ({
  id: String(c.id), name: c.name, stock: c.stock, perUserLimit: c.perUserLimit, opensAt: iso(c.opensAt),
  closesAt: iso(c.closesAt),
  holdSeconds: c.holdSeconds,
  queue: queueView(c),
})

const ADMIN = [{ adminToken: [] }]
/** The admin view of an archived campaign, from PostgreSQL alone (its live state left Redis). */
async function archivedAdminView(campaigns: CampaignsRepository, row: CampaignRow) {
  const t = await campaigns.claimTotals(String(row.id))
  return {
    ...campaignView(row), issued: t.maxSequence, returned: t.released, remaining: Math.max(0,
      row.stock - row.activeClaims),
    persisted: t.rows, pending: 0, state: 'archived' as const, archivedAt: iso(row.archivedAt),
  }
}

const errors = { 400: ErrorSchema, 401: ErrorSchema, 413: ErrorSchema, 415: ErrorSchema, 503: ErrorSchema,
  500: ErrorSchema }
const writeErrors = { ...errors, 422: ErrorSchema }

const AdminWriteHeadersSchema = Type.Object({
  'idempotency-key': Type.Optional(Type.String({
    pattern: '^[A-Za-z0-9_.:-]{1,128}$',
    description: 'a retry with the same key gets the first answer and never writes twice ' +
      '(stored in PostgreSQL with the write)',
  })),
})

/** 409 STOCK_LIMIT: the addition would take the campaign past STOCK_MAX; nothing was written. */
const stockLimit = (id: string, add: number, stock: number) => errorBody(409, ErrorCode.STOCK_LIMIT,
  `adding ${add} to campaign ${id} (stock ${stock}) would pass the maximum stock of ${STOCK_MAX}; ` +
  `at most ${Math.max(0, STOCK_MAX - stock)} more can be added`, { limit: STOCK_MAX, stock })

const reconcileHint = (id: string) => `npm run reconcile -- --campaign ${id} --fix`

/**
 * The write is committed in PostgreSQL; mirroring it into Redis failed. Never a 500 that hides the write:
 * a 503 naming the campaign and what to run (with a key, a retry re-runs only the mirror).
 */
function notMirrored(id: string, what: string, key: string | undefined, cause: string): AppError {
  const next = key
    ? `retry with the same Idempotency-Key (it mirrors again without writing twice), or run ${reconcileHint(id)}`
    : `do not repeat the request without an Idempotency-Key (it would write again); run ${reconcileHint(id)}`
  return new AppError(503, ErrorCode.BACKEND_UNAVAILABLE,
    `${what} committed in PostgreSQL (campaign ${id}) but not mirrored to Redis (${cause}); ${next}`,
    { campaignId: id })
}

export interface AdminCampaignRoutesOptions {
  /** The admin token check (src/auth.ts). */
  adminAuth: Authenticator
  redis: RedisClient
  keys: Keys
  /** Idempotency-Key answers share the campaign write's transaction. */
  db: Db
  campaigns: CampaignsRepository
  /** Stock was added: this instance stops answering 410 for the campaign at once. */
  forgetSoldOut: (campaignId: string) => void
}

export const adminCampaignRoutes: FastifyPluginAsyncTypebox<AdminCampaignRoutesOptions> = async (app, opts) => {
  app.addHook('onRequest', opts.adminAuth)
  const idempotency = createAdminIdempotency(opts.db)

  /** Mirrors a committed row into Redis, turning any failure into the 503 above. */
  async function mirrorCommitted(log: FastifyBaseLogger, row: CampaignRow, mode: 'create' | 'update', what: string,
    key: string | undefined) {
    const id = String(row.id)
    let live: Awaited<ReturnType<typeof mirrorCampaign>>
    try {
      live = await mirrorCampaign(opts.redis, opts.keys, row, mode)
    } catch (err) {
      log.error({ err, campaignId: id }, 'admin write committed in PostgreSQL, Redis mirror failed')
      throw notMirrored(id, what, key, (err as Error).message)
    }
    if (!live) {
      throw new AppError(503, ErrorCode.CAMPAIGN_UNAVAILABLE,
        `${what} committed in PostgreSQL but campaign ${id} has no live state in Redis; run ${reconcileHint(id)}`,
        { campaignId: id })
    }
    if (key) await idempotency.markMirrored(key).catch((err: Error) => log.warn({ err, campaignId: id },
      'could not record the mirror; a replay mirrors again'))
    return live
  }

  app.post('/admin/campaigns', {
    schema: { tags: ['admin'],
      operationId: 'createCampaign', security: ADMIN,
      summary: 'Create a campaign (stored in PostgreSQL, then mirrored into Redis)',
      headers: AdminWriteHeadersSchema, body: CreateCampaignBodySchema,
      response: { 201: CampaignSchema, ...writeErrors } },
  }, async (req, reply) => {
    const b = req.body
    const opensAt = b.opensAt ? new Date(b.opensAt) : null
    const closesAt = b.closesAt ? new Date(b.closesAt) : null
    if (opensAt && closesAt && opensAt >= closesAt) {
      throw new AppError(400, ErrorCode.VALIDATION, 'closesAt must be after opensAt')
    }
    const input = { name: b.name, stock: b.stock, perUserLimit: b.perUserLimit ?? 1, opensAt, closesAt,
      holdSeconds: b.holdSeconds ?? null, ...queueColumns(b.queue) }
    const key = req.headers['idempotency-key']
    // Database first: if the Redis mirror then fails, the campaign is unavailable (503), never oversold.
    if (!key) {
      const row = await opts.campaigns.create(input)
      await mirrorCommitted(req.log, row, 'create', 'the campaign was', undefined)
      return reply.code(201).send(campaignView(row))
    }
    let created: CampaignRow | undefined
    const { answer, replayed } = await idempotency.once(key, 'POST /admin/campaigns', req.body, async (tx) => {
      created = await opts.campaigns.create(input, tx)
      return { statusCode: 201, body: campaignView(created), campaignId: created.id }
    })
    // After a lost race the closure's row was rolled back: read the winner's.
    const row = replayed ? await opts.campaigns.get(answer.campaignId) : created
    if (!row) throw campaignNotFound(answer.campaignId)
    // A replay after a mirror that once succeeded only updates: re-creating a live state that was lost since
    // would restart issued at 0 (reconcile rebuilds it from the claims instead).
    await mirrorCommitted(req.log, row, replayed && answer.mirrored ? 'update' : 'create', 'the campaign was', key)
    if (replayed) reply.header('idempotent-replayed', 'true')
    return reply.code(201).send(answer.body as ReturnType<typeof campaignView>)
  })

  app.get('/admin/campaigns', {
    schema: {
      tags: ['admin'], operationId: 'listCampaigns', security: ADMIN, summary: 'Campaigns, newest first (at ' +
        'most `limit`, default 100)',
      querystring: CampaignListQuerySchema, response: { 200: CampaignListSchema, ...errors },
    },
  }, async (req) => ({ campaigns: (await opts.campaigns.list(Number(req.query.limit ?? 100))).map(campaignView) }))

  app.get('/admin/campaigns/:id', {
    schema: { tags: ['admin'],
      operationId: 'getCampaignAdmin', security: ADMIN,
      summary: 'A campaign with its live counters and how many claims are persisted',
      params: CampaignIdParamsSchema,
      response: { 200: AdminCampaignSchema, 404: ErrorSchema, ...errors } },
  }, async (req) => {
    const row = await opts.campaigns.get(req.params.id)
    if (!row) throw campaignNotFound(req.params.id)
    if (row.archivedAt) return archivedAdminView(opts.campaigns, row)
    const [live, persisted] = await Promise.all([readLiveState(opts.redis, opts.keys, req.params.id),
      opts.campaigns.persistedCount(req.params.id)])
    if (!live) {
      // Archived while we read: the live state is gone on purpose.
      const again = await opts.campaigns.get(req.params.id)
      if (again?.archivedAt) return archivedAdminView(opts.campaigns, again)
      throw campaignUnavailable(req.params.id)
    }
    return {
      ...campaignView(row), stock: live.stock, issued: live.issued, returned: live.returned,
      remaining: remainingOf(live),
      persisted, pending: Math.max(0, live.issued - persisted), state: campaignState(live), archivedAt: null,
    }
  })

  app.post('/admin/campaigns/:id/stock', {
    schema: {
      tags: ['admin'], operationId: 'addStock', summary: 'Add stock (also to a sold-out campaign)', security: ADMIN,
      params: CampaignIdParamsSchema, headers: AdminWriteHeadersSchema, body: AddStockBodySchema,
      response: { 200: AddStockResponseSchema, 404: ErrorSchema, 409: ErrorSchema, ...writeErrors },
    },
  }, async (req, reply) => {
    const { id } = req.params
    const key = req.headers['idempotency-key']
    // Refuse before touching the database when the live state is gone: only reconcile may rebuild it.
    if (!(await opts.redis.exists(opts.keys.campaign(id)))) {
      const gone = await opts.campaigns.get(id)
      if (!gone) throw campaignNotFound(id)
      if (gone.archivedAt) throw campaignEnded(id)
      throw campaignUnavailable(id)
    }
    let stock: number | undefined
    let row: CampaignRow | null
    if (!key) {
      const added = await opts.campaigns.addStock(id, req.body.add, STOCK_MAX)
      if (!added) throw campaignNotFound(id)
      if ('over' in added) return reply.code(409).send(stockLimit(id, req.body.add, added.stock))
      row = added
    } else {
      let updated: CampaignRow | null = null
      const { answer, replayed } = await idempotency.once(key, `POST /admin/campaigns/${id}/stock`, req.body,
        async (tx) => {
          const added = await opts.campaigns.addStock(id, req.body.add, STOCK_MAX, tx)
          if (!added) throw campaignNotFound(id)
          // The refusal is stored with the key like an answer: a retry gets it again, even after a later change.
          if ('over' in added) {
            return { statusCode: 409, body: stockLimit(id, req.body.add, added.stock), campaignId: BigInt(id) }
          }
          updated = added
          return { statusCode: 200, body: { stock: added.stock }, campaignId: added.id }
        })
      if (replayed) reply.header('idempotent-replayed', 'true')
      if (answer.statusCode === 409) return reply.code(409).send(answer.body as ReturnType<typeof stockLimit>)
      // A replay writes nothing: it mirrors the database's current stock (mirror.lua never lowers it).
      row = replayed ? await opts.campaigns.get(id) : updated
      if (!row) throw campaignNotFound(id)
      stock = Number(answer.body.stock)
    }
    const live = await mirrorCommitted(req.log, row, 'update', `the stock addition (stock now ${row.stock}) was`, key)
    stock ??= live.stock
    // Every instance (this one synchronously, the others through pub/sub) stops answering 410 locally.
    opts.forgetSoldOut(id)
    // The stock is added already: failing the request now would invite a second addition on retry.
    await publishCampaignChanged(opts.redis, opts.keys, { type: 'stock-added', campaignId: id })
      .catch((err: Error) => req.log.warn({ err },
        'stock-added event not published; other instances may answer 410 until SOLD_OUT_CACHE_MS passes'))
    return { stock, remaining: remainingOf(live) }
  })
}
