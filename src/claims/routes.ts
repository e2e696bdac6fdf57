import { randomUUID } from 'node:crypto'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import rateLimit from '@fastify/rate-limit'
import type { FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify'
import { AppError, ErrorCode, ErrorSchema, errorBody, isUnanswered } from '../errors.js'
import type { Authenticator } from '../auth.js'
import type { Config } from '../config.js'
import type { Keys } from '../redis/keys.js'
import type { RedisClient } from '../redis/client.js'
import type { CampaignsRepository } from '../campaigns/repository.js'
import type { Missing } from '../campaigns/lookup.js'
import type { SoldOutCache } from './sold-out-cache.js'
import type { DurableAnswers } from '../durability/answers.js'
import { CampaignIdParamsSchema } from '../campaigns/schemas.js'
import { withTimeout } from '../timeout.js'
import { claimState, isOpenHold, parseUserRecord } from '../redis/users-record.js'
import { readLiveState } from '../redis/campaign-hash.js'
import { rowState } from '../lifecycle/views.js'
import { claimDeadline, runClaim, type ClaimOutcome } from './claim-script.js'
import { ClaimBodySchema, ClaimHeadersSchema, ClaimSchema, MyClaimsSchema } from './schemas.js'

const iso = (ms: number) => new Date(ms).toISOString()

const soldOutBody = (campaignId: string) => errorBody(410, ErrorCode.SOLD_OUT, `campaign ${campaignId} is sold out`)

/**
 * The one place a script outcome becomes an HTTP answer (fresh and replayed alike). Refusals are replies,
 * not thrown errors: they are the common answer in a burst, and a thrown error costs a stack trace and a
 * log line each.
 */
type Refusal = ReturnType<typeof errorBody>
type Issued = {
  claimId: string; campaignId: string; userId: string; sequence: number; status?: 'held'; expiresAt?: string }
type Answered = Exclude<ClaimOutcome, { kind: 'unavailable' } | { kind: 'rate_limited' } | { kind: 'too_late' } |
  { kind: 'recovering' }>

/** The script started after the request's deadline: it wrote nothing (the request waited on a slow Redis). */
const claimTooLate = () => new AppError(503, ErrorCode.BACKEND_UNAVAILABLE,
  'Redis did not run the claim in time; nothing was issued, retry shortly')
/**
 * The script was sent and no answer came within the bound (a frozen Redis, a reply lost on the way). Redis
 * may have run it just before it stopped answering, so the only true answer is "unknown", with the claim's
 * id to look for. It cannot be issued later: past the request's deadline the script refuses. (A refused
 * connection fails before anything is sent: the plain 503 of src/http/error-handlers.ts.)
 */
const claimOutcomeUnknown = (campaignId: string, claimId: string) => new AppError(503, ErrorCode.BACKEND_UNAVAILABLE,
  `Redis did not answer the claim in time. If it ran the claim just before it stopped answering, claim ${claimId} ` +
  `was issued; it cannot be issued later. GET /v1/campaigns/${campaignId}/claims/me lists it if it was, and a ` +
  'retry with the same Idempotency-Key answers it', { claimId })
function answer(outcome: Answered, campaignId: string, userId: string): [201, Issued] | [403 | 409 | 410, Refusal] {
  switch (outcome.kind) {
    case 'issued':
      // A campaign with holdSeconds hands out holds: the user confirms before expiresAt or the unit goes back.
      return [201, outcome.holdUntil === null
        ? { claimId: outcome.claimId, campaignId, userId, sequence: outcome.sequence }
        : { claimId: outcome.claimId, campaignId, userId, sequence: outcome.sequence, status: 'held',
            expiresAt: iso(outcome.holdUntil) }]
    case 'at_limit':
      // The script lists at most the first 10 sequences, so the body stays small whatever the limit.
      return [409, errorBody(409, ErrorCode.ALREADY_CLAIMED,
        `user already holds ${outcome.count} claim(s), the campaign's per-user limit`,
        { count: outcome.count, sequences: outcome.sequences })]
    case 'sold_out':
      return [410, soldOutBody(campaignId)]
    case 'not_open':
      return [403, errorBody(403, ErrorCode.NOT_OPEN, `campaign ${campaignId} opens at ${iso(outcome.opensAt)}`,
        { opensAt: iso(outcome.opensAt) })]
    case 'not_admitted':
      return [403, errorBody(403, ErrorCode.NOT_ADMITTED, outcome.position === null
        ? `campaign ${campaignId} has a waiting room: join it (POST /v1/campaigns/${campaignId}/queue) and claim ` +
          'once admitted'
        : `not admitted (or no longer): your place in line is ${outcome.position}`, { position: outcome.position })]
    case 'closed':
      return [403, errorBody(403, ErrorCode.CLOSED, `campaign ${campaignId} closed at ${iso(outcome.closesAt)}`,
        { closesAt: iso(outcome.closesAt) })]
  }
}

/** The claim path's counters (src/ops/metrics.ts implements them). */
interface ClaimMetrics {
  countSoldOutLocal(): void
  observeClaimRequest(status: number, seconds: number): void
  startClaimScript(): () => void
  countClaim(outcome: ClaimOutcome['kind'] | 'replayed' | 'error'): void
}

/** What the claim routes use, and nothing else of the app. */
export interface ClaimRoutesOptions {
  config: Pick<Config, 'IDEMPOTENCY_TTL_S' | 'RATE_LIMIT_FAIL_OPEN' | 'RATE_LIMIT_IP_MAX' | 'RATE_LIMIT_IP_WINDOW_MS' |
    'RATE_LIMIT_USER_MAX' | 'RATE_LIMIT_USER_WINDOW_MS' | 'REDIS_COMMAND_TIMEOUT_MS' | 'TRUSTED_USER_HEADER'>
  redis: RedisClient
  keys: Keys
  /** Sets request.userId (src/auth.ts). */
  authenticate: Authenticator
  soldOut: SoldOutCache
  metrics: ClaimMetrics
  /** An archived campaign's claims are rows only. */
  campaigns: Pick<CampaignsRepository, 'userClaims' | 'persistedClaimIds'>
  /** CLAIM_DURABILITY: refusal before the script, confirmation on the replicas after it (src/durability/). */
  durable: DurableAnswers
  /** Why Redis must not take claims now: an evicting policy switched on at run time ('' when none). */
  evictionProblem: () => string
  /** Why Redis has no live state for a campaign (src/campaigns/lookup.ts). */
  whyMissing: (id: string) => Promise<Missing>
  /** 404, 403 CLOSED (archived) or 503 for a campaign whose live state Redis does not have. */
  errorForMissing: (id: string) => Promise<AppError>
  /** With automatic recovery (src/recovery/): the script refuses fenced campaigns; this is their 503. */
  fenced?: (id: string) => AppError
}

export const claimRoutes: FastifyPluginAsyncTypebox<ClaimRoutesOptions> = async (app, opts) => {
  const { config, redis, keys, soldOut, authenticate } = opts
  // Per IP only, in this process's memory (the plugin's own store): a flood guard that runs before any
  // token crypto. The per-user limit is counted inside claim.lua, in the claim's one round trip.
  await app.register(rateLimit, { global: false, cache: 50_000, skipOnError: config.RATE_LIMIT_FAIL_OPEN })
  const rateLimited = (reply: FastifyReply, ttlMs: number) => {
    const s = Math.max(1, Math.ceil(ttlMs / 1000))
    reply.header('retry-after', s)
    return new AppError(429, ErrorCode.RATE_LIMITED, `too many requests, retry in ${s} s`)
  }

  // Per IP first (cheap, local, stops floods before any crypto), then authenticate, then per user.
  const onRequest: onRequestHookHandler[] = []
  if (config.RATE_LIMIT_IP_MAX > 0) {
    const check = app.createRateLimit({ max: config.RATE_LIMIT_IP_MAX, timeWindow: config.RATE_LIMIT_IP_WINDOW_MS,
      keyGenerator: (req) => req.ip })
    onRequest.push(async (req: FastifyRequest, reply: FastifyReply) => {
      const r = await check(req)
      if (!r.isAllowed && r.isExceeded) throw rateLimited(reply, r.ttl)
    })
  }
  // Sold out is public (GET /v1/campaigns/:id says so) and consumes nothing: once this instance knows it,
  // a late arrival that carries a credential is refused before any token crypto, the cheapest answer a
  // burst's long tail can get. A keyed request may be the replay of a 201, so it goes on to Redis.
  const credential = config.TRUSTED_USER_HEADER?.toLowerCase() ?? 'authorization'
  const answerSoldOutLocally = (id: string, reply: FastifyReply) => {
    opts.metrics.countSoldOutLocal()
    return reply.code(410).send(soldOutBody(id))
  }
  // Callback style: an async hook costs a promise and a microtask on every claim, answered or not.
  onRequest.push((req, reply, done) => {
    const id = (req.params as { id?: string }).id
    if (id !== undefined && req.headers[credential] && !req.headers['idempotency-key'] && soldOut.has(id)) {
      answerSoldOutLocally(id, reply)
      return
    }
    done()
  })
  onRequest.push(authenticate)

  // The claim as a whole is bounded by REDIS_COMMAND_TIMEOUT_MS from the request's arrival (on a cluster a
  // command can also wait in ioredis' own queue during a slots refresh, before its command timeout starts).
  // The script itself refuses to start after claimDeadline(), earlier by the clock-skew margin, so a claim
  // answered 503 here can never be issued later by a script still queued somewhere (claim.lua, ARGV[8]).
  const bounded = <T>(p: Promise<T>) => withTimeout(p, config.REDIS_COMMAND_TIMEOUT_MS, 'claim script')

  app.post('/v1/campaigns/:id/claims', {
    onRequest,
    onResponse: (_req, reply, done) => {
      opts.metrics.observeClaimRequest(reply.statusCode, reply.elapsedTime / 1000)
      done()
    },
    schema: {
      tags: ['claims'],
      operationId: 'claim',
      summary: "Claim one unit of a campaign's stock for the authenticated user",
      security: [{ userJwt: [] }],
      params: CampaignIdParamsSchema,
      headers: ClaimHeadersSchema,
      body: ClaimBodySchema,
      response: {
        201: ClaimSchema, 400: ErrorSchema, 401: ErrorSchema, 403: ErrorSchema, 404: ErrorSchema, 409: ErrorSchema,
        410: ErrorSchema, 413: ErrorSchema, 415: ErrorSchema, 429: ErrorSchema, 503: ErrorSchema,
      },
    },
  }, async (req, reply) => {
    const campaignId = req.params.id
    const idempotencyKey = req.headers['idempotency-key']
    // A keyed request may be the replay of a 201, so it always asks Redis.
    if (!idempotencyKey && soldOut.has(campaignId)) return answerSoldOutLocally(campaignId, reply)
    const unsafe = opts.evictionProblem()
    if (unsafe) throw new AppError(503, ErrorCode.BACKEND_UNAVAILABLE, `claims refused: ${unsafe}`)
    const ticket = opts.durable.before(campaignId)
    const mark = soldOut.mark()
    const deadlineMs = claimDeadline(Date.now(), config.REDIS_COMMAND_TIMEOUT_MS)
    const stopTimer = opts.metrics.startClaimScript()
    const claimId = randomUUID()
    let result: Awaited<ReturnType<typeof runClaim>>
    try {
      result = await bounded(runClaim(redis, keys, {
        campaignId, userId: req.userId, claimId, idempotencyKey,
        idempotencyTtlS: config.IDEMPOTENCY_TTL_S,
        // Per user and campaign: a burst is on one campaign, and a user's claims elsewhere should not count.
        userMax: config.RATE_LIMIT_USER_MAX, userWindowMs: config.RATE_LIMIT_USER_WINDOW_MS, deadlineMs,
        fence: opts.fenced !== undefined,
      }))
    } catch (err) {
      opts.metrics.countClaim('error')
      if (!isUnanswered(err)) throw err
      req.log.error({ err, userId: req.userId, claimId }, 'claim outcome unknown: Redis did not answer in time')
      throw claimOutcomeUnknown(campaignId, claimId)
    } finally {
      stopTimer()
    }
    const { outcome, replayed } = result
    opts.metrics.countClaim(replayed ? 'replayed' : outcome.kind)
    // Joins the request's one completion line (with the user id): no extra line per claim.
    req.logFields = { campaignId, outcome: outcome.kind, replayed,
      sequence: outcome.kind === 'issued' ? outcome.sequence : undefined }
    if (replayed) reply.header('idempotent-replayed', 'true')
    if (outcome.kind === 'unavailable') throw await opts.errorForMissing(campaignId)
    if (outcome.kind === 'rate_limited') throw rateLimited(reply, outcome.retryAfterMs)
    if (outcome.kind === 'too_late') throw claimTooLate()
    if (outcome.kind === 'recovering') throw opts.fenced!(campaignId)
    // Answers saying the user holds a unit (201, replayed or not; 409 listing their claims) wait for the replicas.
    if (outcome.kind === 'issued' || outcome.kind === 'at_limit') {
      await opts.durable.after(ticket, { campaignId, action: 'claim',
        claimId: outcome.kind === 'issued' ? outcome.claimId : undefined })
    }
    // A replayed SOLD_OUT is an old answer: the campaign may have been restocked since.
    if (outcome.kind === 'sold_out' && !replayed) soldOut.remember(campaignId, mark)
    const a = answer(outcome, campaignId, req.userId)
    return a[0] === 201 ? reply.code(201).send(a[1]) : reply.code(a[0]).send(a[1])
  })

  app.get('/v1/campaigns/:id/claims/me', {
    onRequest: authenticate,
    schema: { tags: ['claims'],
      operationId: 'listMyClaims', security: [{ userJwt: [] }],
      summary: "The authenticated user's claims on a campaign, pending or persisted, with their lifecycle state",
      params: CampaignIdParamsSchema,
      response: { 200: MyClaimsSchema, 400: ErrorSchema, 401: ErrorSchema, 404: ErrorSchema, 503: ErrorSchema } },
  }, async (req) => {
    const id = req.params.id
    const [live, record] = await Promise.all([readLiveState(redis, keys, id), redis.hget(keys.users(id), req.userId)])
    if (!live) {
      const m = await opts.whyMissing(id)
      if (m.kind !== 'archived') throw await opts.errorForMissing(id)
      // Archived: every claim is a row (the archive refused while any was pending).
      const rows = await opts.campaigns.userClaims(id, req.userId)
      return { claims: rows.map((r) => ({ claimId: r.claimId, sequence: r.sequence,
        claimedAt: r.claimedAt.toISOString(), status: 'persisted' as const, state: rowState(r) })) }
    }
    const mine = parseUserRecord(record).claims
    const persisted = await opts.campaigns.persistedClaimIds(mine.map((c) => c.claimId))
    return {
      claims: mine.map((c) => ({
        claimId: c.claimId, sequence: c.sequence, claimedAt: iso(c.claimedAt),
        status: persisted.has(c.claimId) ? 'persisted' as const : 'pending' as const,
        state: claimState(c.mark),
        ...(isOpenHold(c.mark) && live.holdSeconds ? { expiresAt: iso(c.claimedAt + live.holdSeconds * 1000) } : {}),
      })),
    }
  })
}
