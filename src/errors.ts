import { Type } from 'typebox'
import { isRedisUnavailableReply } from './redis/client.js'
import { TimeoutError } from './timeout.js'

/** Every machine-readable error code the API answers with. */
export const ErrorCode = {
  VALIDATION: 'VALIDATION',
  UNAUTHORIZED: 'UNAUTHORIZED',
  ADMIN_DISABLED: 'ADMIN_DISABLED',
  NOT_FOUND: 'NOT_FOUND',
  METHOD_NOT_ALLOWED: 'METHOD_NOT_ALLOWED',
  CAMPAIGN_NOT_FOUND: 'CAMPAIGN_NOT_FOUND',
  CAMPAIGN_UNAVAILABLE: 'CAMPAIGN_UNAVAILABLE',
  RECOVERING: 'RECOVERING',
  ALREADY_CLAIMED: 'ALREADY_CLAIMED',
  SOLD_OUT: 'SOLD_OUT',
  NOT_OPEN: 'NOT_OPEN',
  CLOSED: 'CLOSED',
  CLAIM_NOT_FOUND: 'CLAIM_NOT_FOUND',
  NOT_ADMITTED: 'NOT_ADMITTED',
  NO_QUEUE: 'NO_QUEUE',
  NOT_IN_QUEUE: 'NOT_IN_QUEUE',
  NO_DRAW: 'NO_DRAW',
  CAMPAIGN_ENDED: 'CAMPAIGN_ENDED',
  HOLD_EXPIRED: 'HOLD_EXPIRED',
  CLAIM_CANCELLED: 'CLAIM_CANCELLED',
  NOT_A_HOLD: 'NOT_A_HOLD',
  CAMPAIGN_ACTIVE: 'CAMPAIGN_ACTIVE',
  STOCK_LIMIT: 'STOCK_LIMIT',
  HOLDS_OPEN: 'HOLDS_OPEN',
  CLAIMS_PENDING: 'CLAIMS_PENDING',
  RECONCILE_DRIFT: 'RECONCILE_DRIFT',
  RATE_LIMITED: 'RATE_LIMITED',
  PAYLOAD_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  URI_TOO_LONG: 'URI_TOO_LONG',
  HEADERS_TOO_LARGE: 'HEADERS_TOO_LARGE',
  REQUEST_TIMEOUT: 'REQUEST_TIMEOUT',
  UNSUPPORTED_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  SHUTTING_DOWN: 'SHUTTING_DOWN',
  NOT_READY: 'NOT_READY',
  METRICS_DISABLED: 'METRICS_DISABLED',
  BACKEND_UNAVAILABLE: 'BACKEND_UNAVAILABLE',
  NOT_DURABLE: 'NOT_DURABLE',
  IDEMPOTENCY_KEY_REUSED: 'IDEMPOTENCY_KEY_REUSED',
  INTERNAL: 'INTERNAL',
} as const
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode]

export const ErrorSchema = Type.Object({
  statusCode: Type.Integer(),
  code: Type.String(),
  error: Type.String(),
  message: Type.String(),
  count: Type.Optional(Type.Integer({ description: 'ALREADY_CLAIMED: how many claims the user holds' })),
  sequences: Type.Optional(Type.Array(Type.Integer(),
    { description: 'ALREADY_CLAIMED: the sequences the user holds' })),
  opensAt: Type.Optional(Type.String({ format: 'date-time', description: 'NOT_OPEN: when the campaign opens' })),
  closesAt: Type.Optional(Type.String({ format: 'date-time', description: 'CLOSED: when the campaign closed' })),
  campaignId: Type.Optional(Type.String({
    description: 'BACKEND_UNAVAILABLE after an admin write committed: the campaign it wrote' })),
  position: Type.Optional(Type.Union([Type.Integer(), Type.Null()], {
    description: 'NOT_ADMITTED: the user\'s place in the waiting room (null: not in line, or not drawn yet)' })),
  limit: Type.Optional(Type.Integer({ description: 'STOCK_LIMIT: the most stock a campaign can hold' })),
  stock: Type.Optional(Type.Integer({ description: 'STOCK_LIMIT: the stock now' })),
  claimId: Type.Optional(Type.String({
    description: 'NOT_DURABLE, or BACKEND_UNAVAILABLE on a claim Redis did not answer in time: the claim whose ' +
      'outcome is unknown (GET .../claims/me lists it if it was kept)' })),
  reason: Type.Optional(Type.String({
    description: 'archive refusals (409): why the campaign cannot be archived yet' })),
}, { $id: 'Error' })

const REASONS: Record<number, string> = {
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed',
  408: 'Request Timeout', 409: 'Conflict', 410: 'Gone',
  413: 'Payload Too Large', 414: 'URI Too Long', 415: 'Unsupported Media Type', 422: 'Unprocessable Content',
  429: 'Too Many Requests', 431: 'Request Header Fields Too Large',
  500: 'Internal Server Error', 503: 'Service Unavailable',
}

export class AppError extends Error {
  readonly statusCode: number
  readonly code: ErrorCode
  readonly extra: Record<string, unknown>
  constructor(statusCode: number, code: ErrorCode, message: string, extra: Record<string, unknown> = {}) {
    super(message)
    this.statusCode = statusCode
    this.code = code
    this.extra = extra
  }

  toBody() {
    return errorBody(this.statusCode, this.code, this.message, this.extra)
  }
}

export function errorBody(statusCode: number, code: string, message: string, extra: Record<string, unknown> = {}) {
  return { statusCode, code, error: REASONS[statusCode] ?? 'Error', message, ...extra }
}

const DOWN_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENOTFOUND',
  'CONNECT_TIMEOUT',
  'CONNECTION_CLOSED', 'CONNECTION_ENDED', 'CONNECTION_DESTROYED',
  // PostgreSQL: shutting down, starting up, too many connections, out of resources, and a session the server
  // ended because it sat idle in a transaction (the worker's stalled batch: retried, never dead-lettered),
  // and the bounds of src/db/client.ts: a statement cancelled by statement_timeout (57014) or a lock not
  // granted within lock_timeout (55P03).
  '57P01', '57P02', '57P03', '53300', '53000', '53100', '53200', '25P03', '57014', '55P03'])

/**
 * Redis Cluster while it converges (a master failed, a slot migrates): ioredis follows MOVED/ASK and retries
 * CLUSTERDOWN/TRYAGAIN and closed connections itself, and reports what is left once its retries run out.
 * MOVED or ASK reaching here means a single-node client pointed at a cluster (REDIS_CLUSTER_NODES unset).
 */
const CLUSTER_DOWN = new RegExp(['^(CLUSTERDOWN|TRYAGAIN|MOVED|ASK) ', '^Too many Cluster redirections',
  '^Failed to refresh slots cache', '^None of startup nodes is available', "^Cluster isn't ready"].join('|'))

/**
 * A command sent and not answered within its bound: ours (withTimeout) or ioredis' commandTimeout. What it
 * asked may have run (src/claims/routes.ts tells a claim so).
 */
export const isUnanswered = (err: unknown): boolean =>
  err instanceof TimeoutError || (err as Error | undefined)?.message === 'Command timed out'

/**
 * True for "Redis or PostgreSQL cannot serve this now, retry shortly": unreachable, a command timed out
 * (REDIS_COMMAND_TIMEOUT_MS), or Redis answered OOM, LOADING, READONLY, BUSY, MASTERDOWN and the like.
 */
export function isBackendDown(err: unknown): boolean {
  for (let e = err as { name?: string; code?: string; message?: string; cause?: unknown } | undefined,
    depth = 0; e && depth < 4; e = e.cause as typeof e, depth++) {
    if (e.name === 'MaxRetriesPerRequestError' || (e.code && DOWN_CODES.has(e.code))) return true
    if (isUnanswered(e) || e.message === 'Connection is closed.' || e.message?.startsWith(
      "Stream isn't writeable")) return true
    if (e.name === 'ReplyError' && isRedisUnavailableReply(e.message)) return true
    if (e.name === 'ClusterAllFailedError') return true
    if (e.message && CLUSTER_DOWN.test(e.message)) return true
  }
  return false
}

/** Seconds a client should wait before retrying a 503 (the Retry-After header every 503 carries). */
export const RETRY_AFTER_S = 1

export const campaignNotFound = (id: string) => new AppError(404, ErrorCode.CAMPAIGN_NOT_FOUND,
  `campaign ${id} does not exist`)
export const campaignUnavailable = (id: string) => new AppError(503, ErrorCode.CAMPAIGN_UNAVAILABLE,
  `campaign ${id} has no live state in Redis; an operator must run reconcile --fix`)
/** Fenced after a Redis restart or failover until the automatic recovery has repaired it (src/recovery/). */
export const campaignRecovering = (id: string) => new AppError(503, ErrorCode.RECOVERING,
  `campaign ${id} is being checked against PostgreSQL after a Redis restart or failover; nothing was issued, ` +
  'retry shortly')
export const claimNotFound = (id: string, claimId: string) => new AppError(404, ErrorCode.CLAIM_NOT_FOUND,
  `campaign ${id} has no claim ${claimId} of yours`)
export const campaignEnded = (id: string) => new AppError(409, ErrorCode.CAMPAIGN_ENDED,
  `campaign ${id} has ended (closed or archived): its claims can no longer change`)
