import Fastify, { type FastifyError, type FastifyInstance } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { AppContext } from '../context.js'
import { AppError, ErrorCode, errorBody } from '../errors.js'
import { CLAIM_LUA } from '../claims/claim-script.js'
import { MIRROR_LUA } from '../campaigns/mirror.js'
import { checkReadiness, postgresCheck, redisCheck, scriptsCheck } from './health.js'
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
    reply.header('connection', 'close').code(503).send(errorBody(503, ErrorCode.SHUTTING_DOWN, 'server is shutting down, retry on another instance'))
  })

  const readiness = () => checkReadiness({
    redis: redisCheck(redis),
    postgres: postgresCheck(db.sql),
    scripts: scriptsCheck(redis, [CLAIM_LUA, MIRROR_LUA]),
  }, config.READY_TIMEOUT_MS)

  const routeOpts: OpsRoutesOptions = { readiness, metrics: ctx.metrics, metricsToken: config.METRICS_TOKEN, metricsOpenWithoutToken: false }
  await app.register(opsRoutes, routeOpts)

  app.decorate('opsServer', null)
  if (config.METRICS_PORT === undefined) return
  const ops = Fastify({ loggerInstance: app.log.child({ listener: 'metrics' }) }).withTypeProvider<TypeBoxTypeProvider>()
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
  app.addHook('onReady', async () => { await ops.listen({ port: config.METRICS_PORT!, host: config.METRICS_HOST ?? config.HOST }) })
  app.addHook('onClose', async () => { await ops.close() })
}
