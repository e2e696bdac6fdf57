import Fastify, { type FastifyError, type FastifyInstance } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { AppContext } from '../context.js'
import { AppError, ErrorCode, RETRY_AFTER_S, errorBody } from '../errors.js'
import { scriptSources } from '../redis/scripts.js'
import { checkReadiness, evictionCheck, postgresCheck, redisCheck, scriptsCheck } from './health.js'
import { httpTimeouts } from '../http-limits.js'
import { opsRoutes, type OpsRoutesOptions } from './routes.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The private listener on METRICS_PORT, or null when metrics are served on the API port only. */
    opsServer: FastifyInstance | null
  }
}

/**
 * Shutdown answers, request ids, and the health/readiness/metrics routes. Call before the app's own routes:
 * the root onRequest hook must apply to all of them.
 */
export async function registerOps(app: FastifyInstance, ctx: AppContext): Promise<void> {
  const { config, redis, db } = ctx
  let closing = false
  // Fastify's own closing answer has no `code`; ours is an ordinary error body (return503OnClosing is off).
  app.addHook('preClose', (done) => { closing = true; done() })
  app.addHook('onRequest', (req, reply, done) => {
    reply.header('x-request-id', req.id)
    if (!closing) return done()
    reply.header('connection', 'close').code(503).send(errorBody(503, ErrorCode.SHUTTING_DOWN,
      'server is shutting down, retry on another instance'))
  })

  // Readiness follows what claims need (Redis, its scripts, a policy that never evicts them). PostgreSQL is
  // only needed by the worker and admin routes: an outage marks the answer degraded instead of taking
  // every API instance out of the load balancer while claims keep answering.
  const eviction = evictionCheck(redis, config.REDIS_EVICTION_POLICY_ACK)
  const postgresUp = postgresCheck(db.sql)
  const readiness = async () => {
    const r = await checkReadiness({
      redis: redisCheck(redis),
      scripts: scriptsCheck(redis, Object.values(scriptSources())),
      eviction,
    }, config.READY_TIMEOUT_MS, { postgres: postgresUp })
    ctx.metrics.setBackendUp('postgres', r.checks.postgres === 'ok')
    ctx.metrics.setBackendUp('redis', r.checks.redis === 'ok')
    return r
  }
  ctx.metrics.setBackendProbe(async () => {
    const r = await checkReadiness({}, config.READY_TIMEOUT_MS, { postgres: postgresUp, redis: redisCheck(redis) })
    ctx.metrics.setBackendUp('postgres', r.checks.postgres === 'ok')
    ctx.metrics.setBackendUp('redis', r.checks.redis === 'ok')
  })

  // The policy can change under a running instance (CONFIG SET, a failover to a differently configured
  // server): re-checked periodically, logged loudly; /readyz checks it on every probe.
  let lastPolicyError = ''
  const policyTimer = setInterval(() => {
    eviction().then(() => { lastPolicyError = '' }, (err: Error) => {
      if (err.message !== lastPolicyError) app.log.error({ err: err.message },
        'redis eviction policy check failed; /readyz answers 503')
      lastPolicyError = err.message
    })
  }, config.REDIS_POLICY_CHECK_INTERVAL_MS)
  app.addHook('onClose', (_app, done) => { clearInterval(policyTimer); done() })

  const routeOpts: OpsRoutesOptions = { readiness, metrics: ctx.metrics, metricsToken: config.METRICS_TOKEN,
    metricsOpenWithoutToken: false }
  await app.register(opsRoutes, routeOpts)

  app.decorate('opsServer', null)
  if (config.METRICS_PORT === undefined) return
  const ops = Fastify({ loggerInstance: app.log.child({ listener: 'metrics' }),
    ...httpTimeouts(config) }).withTypeProvider<TypeBoxTypeProvider>()
  ops.addHook('onSend', (_req, reply, payload, done) => {
    if (reply.statusCode === 503 && !reply.hasHeader('retry-after')) reply.header('retry-after', String(RETRY_AFTER_S))
    done(null, payload)
  })
  ops.setErrorHandler((err: FastifyError | AppError, req, reply) => {
    if (err instanceof AppError) return reply.code(err.statusCode).send(err.toBody())
    req.log.error({ err }, 'request failed')
    return reply.code(500).send(errorBody(500, ErrorCode.INTERNAL, 'internal error'))
  })
  ops.setNotFoundHandler((req, reply) => {
    reply.code(404).send(errorBody(404, ErrorCode.NOT_FOUND, `route ${req.method} ${req.url.split('?')[0]} not found`))
  })
  await ops.register(opsRoutes, { ...routeOpts, metricsOpenWithoutToken: true })
  app.opsServer = ops
  // Listening follows the app's lifecycle: a port already taken fails start-up like the API port would.
  app.addHook('onReady', async () => {
    await ops.listen({ port: config.METRICS_PORT!,
      host: config.METRICS_HOST ?? config.HOST })
  })
  app.addHook('onClose', async () => { await ops.close() })
}
