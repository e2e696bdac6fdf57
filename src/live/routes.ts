import { readFileSync } from 'node:fs'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { onRequestHookHandler } from 'fastify'
import { Type } from 'typebox'
import { ErrorSchema, campaignEnded, campaignNotFound } from '../errors.js'
import { CampaignIdParamsSchema } from '../campaigns/schemas.js'
import type { LiveHub, LiveMessage } from './hub.js'
import { createSseWriter } from './sse.js'

/** What the live page and feed need, and nothing else. */
export interface LiveRoutesOptions {
  hub: LiveHub
  adminAuth: onRequestHookHandler
  /** Whether the campaign exists and is archived (checked once when a viewer connects). */
  campaignStatus: (id: string) => Promise<'active' | 'archived' | 'unknown'>
  intervalMs: number
}

// The page is three small files shipped in the package (copied to dist/ by scripts/copy-assets.mjs), read
// once at start-up: no CDN, nothing fetched from elsewhere.
const asset = (name: string) => readFileSync(new URL(`./assets/${name}`, import.meta.url), 'utf8')
const ASSETS = {
  'live.js': { type: 'text/javascript; charset=utf-8', body: asset('live.js') },
  'live.css': { type: 'text/css; charset=utf-8', body: asset('live.css') },
} as const
const PAGE = asset('live.html')
// Only this origin's files run; the admin token never leaves the page except as a header to this origin.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; " +
  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

const SseSchema = { description: 'Server-Sent Events: `snapshot` (JSON, see docs/operations.md), `problem`, `end`',
  content: { 'text/event-stream': { schema: Type.String() } } }

export const liveRoutes: FastifyPluginAsyncTypebox<LiveRoutesOptions> = async (app, opts) => {
  app.get('/admin/live', {
    schema: {
      tags: ['admin'], operationId: 'getLivePage', security: [], summary: 'The live campaign page (HTML; asks ' +
        'for the admin token, keeps it in the tab only)',
      response: { 200: { description: 'HTML page', content: { 'text/html': { schema: Type.String() } } } },
    },
  }, async (_req, reply) => reply
    .header('content-security-policy', CSP).header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header('cache-control', 'no-cache').type('text/html; charset=utf-8').send(PAGE))

  app.get('/admin/live/:file', {
    schema: {
      tags: ['admin'], operationId: 'getLivePageAsset', security: [], summary: 'Script and style of the live page',
      params: Type.Object({ file: Type.Union([Type.Literal('live.js'), Type.Literal('live.css')]) }),
      response: {
        200: {
          description: 'asset',
          content: { 'text/javascript': { schema: Type.String() }, 'text/css': { schema: Type.String() } },
        },
        400: ErrorSchema,
      },
    },
  }, async (req, reply) => {
    const a = ASSETS[req.params.file]
    return reply.header('x-content-type-options', 'nosniff').header('cache-control', 'no-cache')
      .type(a.type).send(a.body)
  })

  app.get('/admin/campaigns/:id/live', {
    onRequest: opts.adminAuth,
    schema: {
      tags: ['admin'],
      operationId: 'streamCampaignLive',
      security: [{ adminToken: [] }],
      summary: 'Live numbers of a campaign as Server-Sent Events, one `snapshot` event per LIVE_INTERVAL_MS',
      description: 'Needs `Authorization: Bearer <ADMIN_TOKEN>`. Ends with an `end` event when the campaign is ' +
        'archived or deleted; an archived campaign answers 409 CAMPAIGN_ENDED, as its other admin writes do. ' +
        'A client that reads too slowly misses snapshots instead of queueing them.',
      params: CampaignIdParamsSchema,
      response: { 200: SseSchema, 400: ErrorSchema, 401: ErrorSchema, 404: ErrorSchema, 409: ErrorSchema,
        503: ErrorSchema },
    },
  }, async (req, reply) => {
    const { id } = req.params
    const status = await opts.campaignStatus(id)
    if (status === 'unknown') throw campaignNotFound(id)
    if (status === 'archived') throw campaignEnded(id)
    // From here the response is a stream this handler owns: Fastify neither serializes nor ends it.
    reply.hijack()
    const res = reply.raw
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no', // nginx: pass events through as they come
      'x-request-id': String(req.id),
    })
    const sse = createSseWriter(res)
    res.write(`retry: ${Math.max(1000, opts.intervalMs)}\n\n`)
    let unwatch: (() => void) | null = null
    const finish = (why: string) => {
      if (!unwatch) return
      unwatch()
      unwatch = null
      sse.end()
      req.log.info({ campaignId: id, why, ...sse.stats() }, 'live feed closed')
    }
    unwatch = opts.hub.watch(id, {
      send(m: LiveMessage) {
        if (m.type === 'snapshot') sse.event('snapshot', m.json)
        else if (m.type === 'error') sse.event('problem', JSON.stringify({ message: m.message }))
        else {
          // The end must arrive: it is written even behind a queued snapshot (once per feed).
          if (!res.destroyed && !res.writableEnded) {
            res.write(`event: end\ndata: ${JSON.stringify({ reason: m.reason })}\n\n`)
          }
          finish(m.reason)
        }
      },
    })
    res.on('close', () => finish('client left'))
  })
}
