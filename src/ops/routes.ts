import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import type { FastifyRequest } from 'fastify'
import { AppError, ErrorCode, ErrorSchema, errorBody } from '../errors.js'
import { bearerMatcher } from '../auth.js'
import type { ApiMetrics } from './metrics.js'
import type { Readiness } from './health.js'

const HealthSchema = Type.Object({ status: Type.Literal('ok') })

const ChecksSchema = Type.Record(Type.String(), Type.String(), { description: "each check: 'ok' or why it failed" })
const ReadySchema = Type.Object({
  status: Type.Literal('ready'),
  checks: ChecksSchema,
  degraded: Type.Optional(Type.Array(Type.String(),
    { description: 'dependencies that failed without failing readiness (postgres: admin routes answer 503, ' +
      'claims go on)' })),
})
const NotReadySchema = Type.Object({
  statusCode: Type.Integer(), code: Type.String(), error: Type.String(), message: Type.String(),
  checks: Type.Optional(ChecksSchema),
})

export interface OpsRoutesOptions {
  readiness: () => Promise<Readiness>
  metrics: ApiMetrics
  /** Bearer token required for /metrics; undefined on the public listener means /metrics is disabled. */
  metricsToken: string | undefined
  /** The private metrics listener serves /metrics without a token when none is configured. */
  metricsOpenWithoutToken: boolean
}

function bearerCheck(token: string) {
  const matches = bearerMatcher(token)
  return async (req: FastifyRequest) => {
    if (!matches(req)) throw new AppError(401, ErrorCode.UNAUTHORIZED, 'missing or wrong metrics token')
  }
}

/** /healthz, /readyz and /metrics: registered on the API and, when METRICS_PORT is set, on the private listener. */
export const opsRoutes: FastifyPluginAsyncTypebox<OpsRoutesOptions> = async (app, opts) => {
  app.get('/healthz', {
    logLevel: 'warn', // probes every few seconds would drown the request log
    schema: { tags: ['ops'], operationId: 'getHealth', summary: 'The process is alive', security: [],
      response: { 200: HealthSchema } },
  }, async () => ({ status: 'ok' as const }))

  app.get('/readyz', {
    logLevel: 'warn',
    schema: {
      tags: ['ops'],
      operationId: 'getReadiness',
      security: [],
      summary: 'Redis answers, the Lua scripts are loaded and the eviction policy is noeviction; 503 otherwise ' +
        '(within about READY_TIMEOUT_MS). PostgreSQL trouble only marks the answer degraded',
      response: { 200: ReadySchema, 503: NotReadySchema },
    },
  }, async (_req, reply) => {
    const r = await opts.readiness()
    if (r.ready) return { status: 'ready' as const, checks: r.checks,
      ...(r.degraded.length ? { degraded: r.degraded } : {}) }
    const failed = Object.entries(r.checks).filter(([, v]) => v !== 'ok').map(([k, v]) => `${k}: ${v}`)
    return reply.code(503).send({ ...errorBody(503, ErrorCode.NOT_READY, failed.join('; ')), checks: r.checks })
  })

  const onRequest = opts.metricsToken ? bearerCheck(opts.metricsToken) : undefined
  app.get('/metrics', {
    logLevel: 'warn',
    ...(onRequest ? { onRequest } : {}),
    schema: {
      tags: ['ops'],
      operationId: 'getMetrics',
      summary: 'Prometheus metrics (text exposition format)',
      description: 'Needs `Authorization: Bearer <METRICS_TOKEN>` when METRICS_TOKEN is set. On the public port it ' +
        'answers 503 METRICS_DISABLED without METRICS_TOKEN; scrape METRICS_PORT instead.',
      security: [{ metricsToken: [] }],
      response: {
        200: { description: 'Prometheus text exposition format 0.0.4',
          content: { 'text/plain': { schema: Type.String() } } },
        401: ErrorSchema, 503: ErrorSchema,
      },
    },
  }, async (_req, reply) => {
    if (!opts.metricsToken && !opts.metricsOpenWithoutToken) {
      throw new AppError(503, ErrorCode.METRICS_DISABLED,
        'set METRICS_TOKEN to scrape this port, or scrape METRICS_PORT')
    }
    const { contentType, body } = await opts.metrics.render()
    return reply.type(contentType).send(body)
  })
}
