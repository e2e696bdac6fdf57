import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import type { Authenticator } from '../auth.js'
import type { Keys } from '../redis/keys.js'
import type { RedisClient } from '../redis/client.js'
import type { Missing } from '../campaigns/lookup.js'
import { AppError, ErrorCode, ErrorSchema, campaignNotFound, campaignUnavailable } from '../errors.js'
import { CampaignIdParamsSchema } from '../campaigns/schemas.js'
import { line, publicState, type LineOutcome } from './store.js'
import { createQueueStateCache } from './state-cache.js'
import { DrawQuerySchema, DrawSchema, JoinSchema, MyQueueSchema, QueueStateSchema } from './schemas.js'
import { queueView } from './settings.js'

export interface QueueRoutesOptions {
  redis: RedisClient
  keys: Keys
  authenticate: Authenticator
  whyMissing: (id: string) => Promise<Missing>
  /** 404, 403 CLOSED (archived) or 503 for a campaign whose live state Redis does not have. */
  errorForMissing: (id: string) => Promise<AppError>
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString())
const noQueue = (id: string) => new AppError(409, ErrorCode.NO_QUEUE, `campaign ${id} has no waiting room`)
// A ticket: 96 random bits, URL-safe; never derived from the user id.
const newTicket = () => randomBytes(12).toString('base64url')

const userErrors = { 400: ErrorSchema, 401: ErrorSchema, 403: ErrorSchema, 404: ErrorSchema, 409: ErrorSchema,
  503: ErrorSchema }

// The waiting page: three small files shipped in the package, no CDN, the live page's CSP.
const asset = (name: string) => readFileSync(new URL(`./assets/${name}`, import.meta.url), 'utf8')
const ASSETS = {
  'queue.js': { type: 'text/javascript; charset=utf-8', body: asset('queue.js') },
  'queue.css': { type: 'text/css; charset=utf-8', body: asset('queue.css') },
} as const
const PAGE = asset('queue.html')
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; " +
  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

export const queueRoutes: FastifyPluginAsyncTypebox<QueueRoutesOptions> = async (app, opts) => {
  const { redis, keys } = opts
  const figures = createQueueStateCache(redis, keys)

  async function refusal(id: string, r: Exclude<LineOutcome, { kind: 'in_line' }>): Promise<AppError> {
    switch (r.kind) {
      case 'unavailable': return opts.errorForMissing(id)
      case 'no_queue': return noQueue(id)
      case 'closed': return new AppError(403, ErrorCode.CLOSED, `campaign ${id} closed at ${iso(r.closedAt)}`,
        { closesAt: iso(r.closedAt) })
      case 'not_in_line': return new AppError(404, ErrorCode.NOT_IN_QUEUE,
        `you are not in campaign ${id}'s waiting room: join it with POST /v1/campaigns/${id}/queue`)
    }
  }

  app.post('/v1/campaigns/:id/queue', {
    onRequest: opts.authenticate,
    schema: {
      tags: ['queue'], operationId: 'joinQueue', security: [{ userJwt: [] }],
      summary: "Join a campaign's waiting room (201 the first time, 200 with the same ticket on a repeat)",
      params: CampaignIdParamsSchema,
      response: { 200: JoinSchema, 201: JoinSchema, ...userErrors },
    },
  }, async (req, reply) => {
    const id = req.params.id
    const r = await line(redis, keys, id, req.userId, 'join', newTicket())
    if (r.kind !== 'in_line') throw await refusal(id, r)
    return reply.code(r.joined ? 201 : 200).send({ ticket: r.ticket, position: r.position, state: r.state })
  })

  app.get('/v1/campaigns/:id/queue/me', {
    onRequest: opts.authenticate,
    schema: {
      tags: ['queue'], operationId: 'getMyQueuePlace', security: [{ userJwt: [] }],
      summary: 'Your place in the waiting room, its state and the estimated wait',
      params: CampaignIdParamsSchema,
      response: { 200: MyQueueSchema, ...userErrors },
    },
  }, async (req) => {
    const id = req.params.id
    const r = await line(redis, keys, id, req.userId, 'me', '')
    if (r.kind !== 'in_line') throw await refusal(id, r)
    const waiting = r.state === 'waiting' && r.position !== null
    const estimate = waiting ? Math.ceil((r.position! - r.servingUpTo) / Math.max(1, r.admitPerSecond)) : null
    return {
      ticket: r.ticket, position: r.position, state: r.state, admittedUntil: iso(r.admittedUntil),
      ahead: r.position === null ? null : waiting ? r.position - r.servingUpTo - 1 : 0,
      estimatedWaitSeconds: r.state === 'admitted' ? 0 : estimate,
    }
  })

  app.get('/v1/campaigns/:id/queue', {
    schema: {
      tags: ['queue'], operationId: 'getQueueState', security: [],
      summary: "A waiting room's public state (from a cache at most 1 s old; Cache-Control: public, max-age=1)",
      description: 'A client knows its turn from its own position and servingUpTo: polling costs no per-user work.',
      params: CampaignIdParamsSchema,
      response: { 200: QueueStateSchema, 400: ErrorSchema, 404: ErrorSchema, 409: ErrorSchema, 503: ErrorSchema },
    },
  }, async (req, reply) => {
    const id = req.params.id
    const f = await figures(id)
    if (!f) {
      const m = await opts.whyMissing(id)
      if (m.kind === 'unknown') throw campaignNotFound(id)
      if (m.kind === 'lost') throw campaignUnavailable(id)
      const q = queueView(m.row)
      if (!q) throw noQueue(id)
      // Archived: the live state left Redis; the room is closed for good and its seed long public.
      reply.header('cache-control', 'public, max-age=1')
      return { state: 'closed' as const, length: 0, servingUpTo: 0, seedHash: q.seedHash, seed: m.row.queueSeed }
    }
    if (!f.order) throw noQueue(id)
    reply.header('cache-control', 'public, max-age=1')
    return { state: publicState(f), length: f.length, servingUpTo: f.servingUpTo, seedHash: f.seedHash, seed: f.seed }
  })

  app.get('/v1/campaigns/:id/queue/draw', {
    schema: {
      tags: ['queue'], operationId: 'getQueueDraw', security: [],
      summary: "The draw of a shuffle waiting room's pre-queue (after the opening): the seed and every ticket in " +
        'drawn order, paged',
      description: 'Check it: sort the tickets by the hex SHA-256 of `<seed>:<ticket>` ascending, and check ' +
        'that sha256(seed) is the seedHash published from creation on.',
      params: CampaignIdParamsSchema, querystring: DrawQuerySchema,
      response: { 200: DrawSchema, 400: ErrorSchema, 403: ErrorSchema, 404: ErrorSchema, 409: ErrorSchema,
        503: ErrorSchema },
    },
  }, async (req) => {
    const id = req.params.id
    const f = await figures(id)
    if (!f) throw await opts.errorForMissing(id)
    if (!f.order) throw noQueue(id)
    if (f.order !== 'shuffle') {
      throw new AppError(409, ErrorCode.NO_DRAW, `campaign ${id}'s waiting room is fifo: there is no draw`)
    }
    if (f.opensAt !== null && f.now < f.opensAt) {
      throw new AppError(403, ErrorCode.NOT_OPEN, `the draw is published at the opening, ${iso(f.opensAt)}`,
        { opensAt: iso(f.opensAt) })
    }
    if (f.drawnAt === null && f.preQueue > 0) {
      throw new AppError(409, ErrorCode.NO_DRAW, 'the draw is being written; retry in a second')
    }
    const offset = Number(req.query.offset ?? 0)
    const limit = Number(req.query.limit ?? 10_000)
    const [tickets, total] = await Promise.all([redis.lrange(keys.queueDraw(id), offset, offset + limit - 1),
      redis.llen(keys.queueDraw(id))])
    return { seed: f.seed ?? '', tickets, total, offset,
      nextOffset: offset + tickets.length < total ? offset + tickets.length : null }
  })

  app.get('/queue/:id', {
    schema: {
      tags: ['queue'], operationId: 'getQueuePage', security: [],
      summary: 'The waiting page of a campaign (HTML): joins, shows the place in line, "your turn" and sold out',
      params: CampaignIdParamsSchema,
      response: { 200: { description: 'HTML page', content: { 'text/html': { schema: Type.String() } } },
        400: ErrorSchema },
    },
  }, async (_req, reply) => reply
    .header('content-security-policy', CSP).header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header('cache-control', 'no-cache').type('text/html; charset=utf-8').send(PAGE))

  app.get('/queue/assets/:file', {
    schema: {
      tags: ['queue'], operationId: 'getQueuePageAsset', security: [], summary: 'Script and style of the waiting page',
      params: Type.Object({ file: Type.Union([Type.Literal('queue.js'), Type.Literal('queue.css')]) }),
      response: {
        200: { description: 'asset',
          content: { 'text/javascript': { schema: Type.String() }, 'text/css': { schema: Type.String() } } },
        400: ErrorSchema,
      },
    },
  }, async (req, reply) => {
    const a = ASSETS[req.params.file]
    return reply.header('x-content-type-options', 'nosniff').header('cache-control', 'no-cache')
      .type(a.type).send(a.body)
  })
}
