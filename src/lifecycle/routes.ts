import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyBaseLogger } from 'fastify'
import type { Db } from '../db/client.js'
import type { Keys } from '../redis/keys.js'
import type { RedisClient } from '../redis/client.js'
import type { CampaignsRepository } from '../campaigns/repository.js'
import type { Missing } from '../campaigns/lookup.js'
import { AppError, ErrorCode, ErrorSchema, campaignEnded, campaignNotFound, campaignUnavailable, claimNotFound,
  errorBody } from '../errors.js'
import type { Authenticator } from '../auth.js'
import { publishCampaignChanged } from '../campaigns/events.js'
import { CampaignIdParamsSchema } from '../campaigns/schemas.js'
import type { DurableAnswers } from '../durability/answers.js'
import { archiveCampaign } from './archive.js'
import { findClaimOwner } from './owner.js'
import { runCancel, runConfirm, type CancelOutcome } from './scripts.js'
import {
  ArchiveResponseSchema, CancelBodySchema, CancelledClaimSchema, ClaimParamsSchema, ConfirmedClaimSchema,
  RevokeBodySchema,
} from './schemas.js'

const iso = (ms: number) => new Date(ms).toISOString()
const errors = { 400: ErrorSchema, 401: ErrorSchema, 404: ErrorSchema, 409: ErrorSchema, 413: ErrorSchema,
  415: ErrorSchema, 503: ErrorSchema }

const holdExpired = (claimId: string) => new AppError(409, ErrorCode.HOLD_EXPIRED,
  `hold ${claimId} expired before it was confirmed; its unit went back to the stock`)

/** The lifecycle counters (src/ops/metrics.ts implements them). */
interface LifecycleMetrics {
  countCancellation(by: 'user' | 'admin'): void
  countExpiredHold(): void
  countConfirmation(): void
}

/** What the lifecycle routes use, and nothing else of the app. */
export interface LifecycleRoutesOptions {
  /** Sets request.userId (user routes); the admin token check (admin routes). src/auth.ts. */
  authenticate: Authenticator
  adminAuth: Authenticator
  redis: RedisClient
  keys: Keys
  db: Db
  campaigns: CampaignsRepository
  metrics: LifecycleMetrics
  /** A unit came back or the campaign left Redis: this instance stops answering 410 for it at once. */
  forgetSoldOut: (campaignId: string) => void
  /** Why Redis has no live state for a campaign (src/campaigns/lookup.ts). */
  whyMissing: (id: string) => Promise<Missing>
  /** CLAIM_DURABILITY: a cancel or confirm is answered only once on the replicas (src/durability/). */
  durable: DurableAnswers
  /**
   * With automatic recovery (src/recovery/): a fenced campaign's cancel or confirm is refused like its claims
   * (its live state may lack a claim PostgreSQL holds: "not found" could be false); this is their 503.
   */
  fenced?: (id: string) => AppError
}

/** Live state missing: archived -> CAMPAIGN_ENDED, never created -> 404, lost -> 503. */
async function missingCampaign(opts: LifecycleRoutesOptions, id: string): Promise<AppError> {
  const m = await opts.whyMissing(id)
  if (m.kind === 'archived') return campaignEnded(id)
  if (m.kind === 'unknown') return campaignNotFound(id)
  return opts.fenced ? opts.fenced(id) : campaignUnavailable(id)
}

/** Shared by the owner's cancel and the admin's revoke: one script outcome -> one answer. */
async function cancelAnswer(opts: LifecycleRoutesOptions, log: FastifyBaseLogger, o: CancelOutcome,
  a: { campaignId: string; userId: string; claimId: string; by: 'user' | 'admin' }) {
  switch (o.kind) {
    case 'cancelled':
      if (!o.replayed) {
        opts.metrics.countCancellation(a.by)
        // A unit came back: instances that cached "sold out" must ask Redis again.
        opts.forgetSoldOut(a.campaignId)
        await publishCampaignChanged(opts.redis, opts.keys, { type: 'returned', campaignId: a.campaignId })
          .catch((err: Error) => log.warn({ err },
            'returned event not published; other instances may answer 410 until SOLD_OUT_CACHE_MS passes'))
      }
      return { claimId: a.claimId, campaignId: a.campaignId, userId: a.userId, sequence: o.sequence,
        status: 'cancelled' as const, cancelledAt: iso(o.cancelledAt) }
    case 'not_found': throw claimNotFound(a.campaignId, a.claimId)
    case 'ended': throw campaignEnded(a.campaignId)
    case 'hold_expired':
      opts.metrics.countExpiredHold()
      throw holdExpired(a.claimId)
    case 'unavailable': throw await missingCampaign(opts, a.campaignId)
    case 'recovering': throw opts.fenced!(a.campaignId)
  }
}

export const userLifecycleRoutes: FastifyPluginAsyncTypebox<LifecycleRoutesOptions> = async (app, opts) => {
  const { authenticate } = opts

  app.delete('/v1/campaigns/:id/claims/:claimId', {
    onRequest: authenticate,
    schema: {
      operationId: 'cancelClaim', security: [{ userJwt: [] }],
      summary: 'Cancel one of your claims; its unit goes back to the stock (a repeat replays the answer)',
      tags: ['claims'], params: ClaimParamsSchema, body: CancelBodySchema,
      response: { 200: CancelledClaimSchema, ...errors },
    },
  }, async (req) => {
    const campaignId = req.params.id
    const claimId = req.params.claimId.toLowerCase()
    const ticket = opts.durable.before(campaignId)
    const o = await runCancel(opts.redis, opts.keys, { campaignId, userId: req.userId, claimId,
      fence: opts.fenced !== undefined })
    req.logFields = { campaignId, claimId, outcome: `cancel:${o.kind}` }
    if (o.kind === 'cancelled') await opts.durable.after(ticket, { campaignId, claimId, action: 'cancel' })
    return cancelAnswer(opts, req.log, o, { campaignId, userId: req.userId, claimId, by: 'user' })
  })

  app.post('/v1/campaigns/:id/claims/:claimId/confirm', {
    onRequest: authenticate,
    schema: {
      operationId: 'confirmHold', security: [{ userJwt: [] }],
      summary: 'Confirm a hold before its expiresAt (a repeat replays the answer)',
      tags: ['claims'], params: ClaimParamsSchema, body: CancelBodySchema,
      response: { 200: ConfirmedClaimSchema, ...errors },
    },
  }, async (req) => {
    const campaignId = req.params.id
    const claimId = req.params.claimId.toLowerCase()
    const ticket = opts.durable.before(campaignId)
    const o = await runConfirm(opts.redis, opts.keys, { campaignId, userId: req.userId, claimId,
      fence: opts.fenced !== undefined })
    req.logFields = { campaignId, claimId, outcome: `confirm:${o.kind}` }
    if (o.kind === 'confirmed') await opts.durable.after(ticket, { campaignId, claimId, action: 'confirm' })
    switch (o.kind) {
      case 'confirmed':
        if (!o.replayed) opts.metrics.countConfirmation()
        return { claimId, campaignId, userId: req.userId, sequence: o.sequence, status: 'confirmed' as const,
          confirmedAt: iso(o.confirmedAt) }
      case 'not_found': throw claimNotFound(campaignId, claimId)
      case 'hold_expired':
        opts.metrics.countExpiredHold()
        throw holdExpired(claimId)
      case 'cancelled': throw new AppError(409, ErrorCode.CLAIM_CANCELLED, `claim ${claimId} was cancelled`)
      case 'not_a_hold': throw new AppError(409, ErrorCode.NOT_A_HOLD,
        `claim ${claimId} is final: campaign ${campaignId} has no holds to confirm`)
      case 'unavailable': throw await missingCampaign(opts, campaignId)
      case 'recovering': throw opts.fenced!(campaignId)
    }
  })
}

export const adminLifecycleRoutes: FastifyPluginAsyncTypebox<LifecycleRoutesOptions> = async (app, opts) => {
  app.addHook('onRequest', opts.adminAuth)

  app.delete('/admin/campaigns/:id/claims/:claimId', {
    schema: {
      operationId: 'revokeClaim', security: [{ adminToken: [] }],
      summary: "Revoke any user's claim (optional reason); its unit goes back to the stock",
      tags: ['admin'], params: ClaimParamsSchema, body: RevokeBodySchema,
      response: { 200: CancelledClaimSchema, ...errors },
    },
  }, async (req) => {
    const campaignId = req.params.id
    const claimId = req.params.claimId.toLowerCase()
    const owner = await findClaimOwner(opts.redis, opts.keys, opts.campaigns, campaignId, claimId)
    if (owner === null) {
      if (!(await opts.redis.exists(opts.keys.campaign(campaignId)))) throw await missingCampaign(opts, campaignId)
      throw new AppError(404, ErrorCode.CLAIM_NOT_FOUND, `campaign ${campaignId} has no claim ${claimId}`)
    }
    const ticket = opts.durable.before(campaignId)
    const o = await runCancel(opts.redis, opts.keys, { campaignId, userId: owner, claimId,
      reason: req.body?.reason ?? 'revoked by admin', fence: opts.fenced !== undefined })
    req.logFields = { campaignId, claimId, owner, outcome: `revoke:${o.kind}` }
    if (o.kind === 'cancelled') await opts.durable.after(ticket, { campaignId, claimId, action: 'cancel' })
    return cancelAnswer(opts, req.log, o, { campaignId, userId: owner, claimId, by: 'admin' })
  })

  app.post('/admin/campaigns/:id/archive', {
    schema: {
      operationId: 'archiveCampaign', security: [{ adminToken: [] }],
      summary: 'Move an ended (closed or sold-out) campaign out of Redis once PostgreSQL holds all of it',
      tags: ['admin'], params: CampaignIdParamsSchema, body: CancelBodySchema,
      response: { 200: ArchiveResponseSchema, ...errors },
    },
  }, async (req, reply) => {
    const id = req.params.id
    const o = await archiveCampaign({ redis: opts.redis, db: opts.db, keys: opts.keys, campaigns: opts.campaigns }, id)
    if (o.kind === 'not_found') throw campaignNotFound(id)
    if (o.kind === 'refused') {
      return reply.code(409).send(errorBody(409, ErrorCode[o.code],
        `campaign ${id} cannot be archived yet: ${o.reason}`, { reason: o.reason }))
    }
    opts.forgetSoldOut(id)
    return { id, state: 'archived' as const, archivedAt: o.row.archivedAt!.toISOString(), issued: o.issued,
      active: o.active, released: o.released, persisted: o.persisted }
  })
}
