import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { eq, sql } from 'drizzle-orm'
import type { Authenticator } from '../auth.js'
import type { Db } from '../db/client.js'
import { claims } from '../db/schema.js'
import type { Keys } from '../redis/keys.js'
import type { RedisClient } from '../redis/client.js'
import type { CampaignsRepository } from '../campaigns/repository.js'
import { AppError, ErrorCode, ErrorSchema, campaignNotFound } from '../errors.js'
import { CampaignIdParamsSchema } from '../campaigns/schemas.js'
import { parseLog, readFigures } from './store.js'
import { ReportSchema } from './schemas.js'

/** Nearest-rank percentile of sorted values (null when there are none). */
export function percentile(sorted: number[], p: number): number | null {
  if (sorted.length === 0) return null
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!
}

/** Spearman's rank correlation of two equally long lists without ties (null under 2 items). */
export function spearman(a: number[], b: number[]): number | null {
  const n = a.length
  if (n < 2) return null
  const ranks = (xs: number[]) => {
    const r = new Array<number>(n)
    xs.map((x, i) => [x, i] as const).sort((p, q) => p[0] - q[0]).forEach(([, i], k) => { r[i] = k + 1 })
    return r
  }
  const ra = ranks(a)
  const rb = ranks(b)
  let d2 = 0
  for (let i = 0; i < n; i++) d2 += (ra[i]! - rb[i]!) ** 2
  return 1 - (6 * d2) / (n * (n * n - 1))
}

export interface QueueReportOptions {
  adminAuth: Authenticator
  redis: RedisClient
  keys: Keys
  db: Db
  campaigns: Pick<CampaignsRepository, 'get'>
  errorForMissing: (id: string) => Promise<AppError>
}

/** The drop report: how a queued campaign's opening went, from Redis (the room) and PostgreSQL (the claims). */
export const queueReportRoutes: FastifyPluginAsyncTypebox<QueueReportOptions> = async (app, opts) => {
  app.get('/admin/campaigns/:id/report', {
    onRequest: opts.adminAuth,
    schema: {
      tags: ['admin'], operationId: 'getDropReport', security: [{ adminToken: [] }],
      summary: "A queued campaign's drop report: opening, sell-out, answers, joins, admissions, waits, fairness",
      params: CampaignIdParamsSchema,
      response: { 200: ReportSchema, 400: ErrorSchema, 401: ErrorSchema, 403: ErrorSchema, 404: ErrorSchema,
        409: ErrorSchema, 503: ErrorSchema },
    },
  }, async (req) => {
    const id = req.params.id
    const row = await opts.campaigns.get(id)
    if (!row) throw campaignNotFound(id)
    if (!row.queueOrder) throw new AppError(409, ErrorCode.NO_QUEUE, `campaign ${id} has no waiting room`)
    const [f, rawLog, answers] = await Promise.all([readFigures(opts.redis, opts.keys, id),
      opts.redis.lrange(opts.keys.queueLog(id), 0, -1), opts.redis.hgetall(opts.keys.queueAnswers(id))])
    if (!f) throw await opts.errorForMissing(id)
    const [db] = await opts.db.select({
      first: sql<Date | null>`min(${claims.claimedAt})`,
      taken: sql<number>`count(*) FILTER (WHERE ${claims.sequence} > ${f.stock})::int`,
    }).from(claims).where(eq(claims.campaignId, BigInt(id)))
    const opened = f.opensAt ?? row.createdAt.getTime()
    const after = (ms: number | null) => (ms === null ? null : Math.round(ms - opened) / 1000)
    const log = parseLog(rawLog)
    const waits: number[] = []
    const positions: number[] = []
    for (const e of log) {
      if (e.kind !== 'admitted') continue
      positions.push(e.position)
      if (e.joinedAt !== null) waits.push((e.at - e.joinedAt) / 1000)
    }
    waits.sort((x, y) => x - y)
    const first = db?.first ? new Date(db.first).getTime() : null
    return {
      campaignId: id, stock: f.stock, openedAt: new Date(opened).toISOString(),
      firstIssuedAfterSeconds: after(first), soldOutAfterSeconds: after(f.soldOutAt),
      answersByStatus: Object.fromEntries(Object.entries(answers).map(([k, v]) => [k, Number(v)])),
      joins: { preQueue: f.preQueue, afterOpening: f.length - f.preQueue },
      admissions: f.admitted, expiredAdmissions: f.expired,
      returnedUnits: { returned: f.returned, reoffered: f.reoffered, taken: db?.taken ?? 0 },
      waitSeconds: { p50: percentile(waits, 50), p95: percentile(waits, 95), p99: percentile(waits, 99) },
      // Admission order is the log's order: its rank against the published positions.
      fairness: spearman(positions, positions.map((_, i) => i)),
    }
  })
}
