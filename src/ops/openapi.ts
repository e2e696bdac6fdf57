import type { FastifyInstance, FastifySchema } from 'fastify'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import { ErrorCode } from '../errors.js'

/**
 * Which error codes each status can carry. The routes' TypeBox schemas give the statuses; this table adds the
 * codes, so the document names every code a client must handle on every route.
 */
const CODES_BY_STATUS: Record<string, ErrorCode[]> = {
  400: [ErrorCode.VALIDATION],
  401: [ErrorCode.UNAUTHORIZED],
  403: [ErrorCode.NOT_OPEN, ErrorCode.CLOSED, ErrorCode.NOT_ADMITTED],
  404: [ErrorCode.CAMPAIGN_NOT_FOUND, ErrorCode.CLAIM_NOT_FOUND, ErrorCode.NOT_IN_QUEUE],
  409: [ErrorCode.ALREADY_CLAIMED, ErrorCode.CAMPAIGN_ENDED, ErrorCode.HOLD_EXPIRED, ErrorCode.CLAIM_CANCELLED,
    ErrorCode.NOT_A_HOLD,
    ErrorCode.CAMPAIGN_ACTIVE, ErrorCode.HOLDS_OPEN, ErrorCode.CLAIMS_PENDING, ErrorCode.RECONCILE_DRIFT,
    ErrorCode.STOCK_LIMIT, ErrorCode.NO_QUEUE, ErrorCode.NO_DRAW],
  410: [ErrorCode.SOLD_OUT],
  413: [ErrorCode.PAYLOAD_TOO_LARGE],
  415: [ErrorCode.UNSUPPORTED_MEDIA_TYPE],
  422: [ErrorCode.IDEMPOTENCY_KEY_REUSED],
  429: [ErrorCode.RATE_LIMITED],
  500: [ErrorCode.INTERNAL],
  503: [ErrorCode.CAMPAIGN_UNAVAILABLE, ErrorCode.RECOVERING, ErrorCode.ADMIN_DISABLED, ErrorCode.NOT_READY,
    ErrorCode.METRICS_DISABLED, ErrorCode.SHUTTING_DOWN, ErrorCode.BACKEND_UNAVAILABLE, ErrorCode.NOT_DURABLE],
}

/** The codes a route can answer with at a status (some codes belong to one family of routes only). */
function codesFor(url: string, status: string): ErrorCode[] {
  const admin = url.startsWith('/admin/')
  const campaign = url.includes(':id')
  const oneClaim = url.includes(':claimId')
  const confirm = url.endsWith('/confirm')
  const archive = url.endsWith('/archive')
  // The waiting room's routes (issue 21) and the drop report.
  const queue = url.includes('/queue') || url.endsWith('/report')
  return (CODES_BY_STATUS[status] ?? []).filter((c) => {
    switch (c) {
      case ErrorCode.ALREADY_CLAIMED: case ErrorCode.NOT_ADMITTED: return url === '/v1/campaigns/:id/claims'
      case ErrorCode.NO_QUEUE: return queue
      case ErrorCode.NO_DRAW: return url.endsWith('/queue/draw')
      case ErrorCode.NOT_IN_QUEUE: return url.endsWith('/queue/me')
      case ErrorCode.CLAIM_NOT_FOUND: case ErrorCode.HOLD_EXPIRED: return oneClaim
      // also adding stock to, or watching the live feed of, an archived campaign
      case ErrorCode.CAMPAIGN_ENDED: return oneClaim || url.endsWith('/stock') || url.endsWith('/live')
      case ErrorCode.STOCK_LIMIT: return url.endsWith('/stock')
      case ErrorCode.CLAIM_CANCELLED: case ErrorCode.NOT_A_HOLD: return confirm
      case ErrorCode.CAMPAIGN_ACTIVE: case ErrorCode.HOLDS_OPEN:
      case ErrorCode.CLAIMS_PENDING: case ErrorCode.RECONCILE_DRIFT: return archive
      case ErrorCode.ADMIN_DISABLED: return admin
      case ErrorCode.CAMPAIGN_UNAVAILABLE: return campaign
      // a claim, a cancel or confirm (or a queued campaign's join) while the campaign is fenced after a Redis
      // restart or failover
      case ErrorCode.RECOVERING: return url === '/v1/campaigns/:id/claims' || queue || oneClaim
      case ErrorCode.CAMPAIGN_NOT_FOUND: return campaign
      case ErrorCode.NOT_READY: return url === '/readyz'
      case ErrorCode.METRICS_DISABLED: return url === '/metrics'
      // CLAIM_DURABILITY=replica: the writes that answer a user (claim, cancel, revoke, confirm)
      case ErrorCode.NOT_DURABLE: return url === '/v1/campaigns/:id/claims' || oneClaim
      default: return true
    }
  })
}

const isErrorSchema = (s: unknown): s is { properties: Record<string, unknown> } =>
  typeof s === 'object' && s !== null && 'properties' in s &&
  ['statusCode', 'code', 'error', 'message'].every((k) => k in (s as { properties: object }).properties)

/** Docs-only rewrite of a route schema: every error response lists its codes; 500 and 503 SHUTTING_DOWN everywhere. */
function documentErrors(schema: FastifySchema | undefined, url: string): FastifySchema {
  const response: Record<string, unknown> = { ...((schema?.response as Record<string, unknown> | undefined) ?? {}) }
  // Any route can fail unexpectedly, and any route answers 503 SHUTTING_DOWN while the process drains.
  response['500'] ??= { properties: { statusCode: {}, code: {}, error: {}, message: {} } }
  response['503'] ??= { properties: { statusCode: {}, code: {}, error: {}, message: {} } }
  for (const [status, s] of Object.entries(response)) {
    if (!isErrorSchema(s)) continue
    const codes = codesFor(url, status)
    const { $id: _id, ...rest } = s as Record<string, unknown> & { properties: Record<string, unknown> }
    response[status] = {
      ...rest,
      type: 'object',
      required: ['statusCode', 'code', 'error', 'message'],
      description: `Error: ${codes.join(', ')}`,
      properties: {
        ...rest.properties,
        statusCode: { type: 'integer', const: Number(status) },
        code: { type: 'string', enum: codes },
        error: { type: 'string' },
        message: { type: 'string' },
      },
    }
  }
  return { ...schema, response }
}

const REQUEST_ID = { type: 'string', description: 'The request id: the caller\'s X-Request-Id when sent, else ' +
  'one the server made; also in every log line of the request' }
const RETRY_AFTER = { type: 'integer', minimum: 0, description: 'Seconds to wait before retrying' }
const REPLAYED = { type: 'string', enum: ['true'], description: 'Present when this answer replays the first ' +
  'answer to the same Idempotency-Key' }

/** Docs-only: the response headers a client acts on, per status. */
function documentHeaders(schema: FastifySchema, url: string): FastifySchema {
  const response: Record<string, unknown> = { ...(schema.response as Record<string, unknown>) }
  const claim = url === '/v1/campaigns/:id/claims'
  for (const [status, s] of Object.entries(response)) {
    const headers: Record<string, unknown> = { 'X-Request-Id': REQUEST_ID }
    if (status === '429' || status === '503') headers['Retry-After'] = RETRY_AFTER
    if (claim && ['201', '403', '409', '410'].includes(status)) headers['Idempotent-Replayed'] = REPLAYED
    if (status === '405') headers.Allow = { type: 'string', description: 'The methods this path serves' }
    response[status] = { ...(s as object), headers }
  }
  return { ...schema, response }
}

/** OpenAPI 3.1 from the routes' schemas, served at /docs (UI) and /docs/json. Register before the routes. */
export async function registerDocs(app: FastifyInstance): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'fcfs',
        version: '0.1.0',
        description: [
          'First-come-first-served coupon issuance.',
          'Every error body is `{statusCode, code, error, message}`; `code` is stable and machine-readable.',
          `Codes: ${Object.values(ErrorCode).join(', ')}. Unknown routes answer 404 ${ErrorCode.NOT_FOUND}; ` +
            `a known path with another method answers 405 ${ErrorCode.METHOD_NOT_ALLOWED} with \`Allow\`. ` +
            `Before any route: a path parameter over 100 characters answers 414 ${ErrorCode.URI_TOO_LONG}, ` +
            `headers over Node's limit (16 KB) 431 ${ErrorCode.HEADERS_TOO_LARGE}, a request not received ` +
            `within HTTP_REQUEST_TIMEOUT_MS 408 ${ErrorCode.REQUEST_TIMEOUT}, ` +
            `unparseable HTTP 400 ${ErrorCode.VALIDATION}.`,
        ].join('\n\n'),
      },
      // Relative: the document describes the server that serves it, wherever that runs.
      servers: [{ url: '/', description: 'the server this document was fetched from' }],
      tags: [
        { name: 'claims', description: 'Claiming (users)' },
        { name: 'campaigns', description: 'Public campaign state' },
        { name: 'queue', description: 'Waiting rooms: join, place in line, public state, the verifiable draw' },
        { name: 'admin', description: 'Campaign administration (ADMIN_TOKEN)' },
        { name: 'ops', description: 'Health, readiness and metrics' },
      ],
      components: {
        securitySchemes: {
          userJwt: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT',
            description: 'HS256 JWT whose `sub` is the user id (or the TRUSTED_USER_HEADER behind a gateway)' },
          adminToken: { type: 'http', scheme: 'bearer', description: 'ADMIN_TOKEN' },
          metricsToken: { type: 'http', scheme: 'bearer', description: 'METRICS_TOKEN' },
        },
      },
    },
    transformObject: (documentObject) => {
      const doc = 'openapiObject' in documentObject ? documentObject.openapiObject : {}
      return optionalNullableBodies(doc as Parameters<typeof optionalNullableBodies>[0]) as never
    },
    transform: ({ schema, url }) => ({ schema: documentHeaders(documentErrors(schema, url), url) as FastifySchema,
      url }),
  })
  await app.register(swaggerUi, { routePrefix: '/docs' })
}

type Operation = {
  requestBody?: { required?: boolean; content?: Record<string, { schema?: { anyOf?: { type?: string }[] } }> }
}

/** @fastify/swagger marks every declared body required; a body schema that admits null is optional. */
function optionalNullableBodies(doc: { paths?: Record<string, Record<string, Operation>> }) {
  for (const item of Object.values(doc.paths ?? {})) {
    for (const op of Object.values(item)) {
      const schemas = Object.values(op.requestBody?.content ?? {}).map((c) => c.schema)
      const nullable = schemas.some((s) => s?.anyOf?.some((a) => a.type === 'null'))
      if (op.requestBody && nullable) op.requestBody.required = false
    }
  }
  return doc
}
