import Fastify, { type FastifyInstance } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type postgres from 'postgres'
import type { Config } from '../config.js'
import { ErrorCode, errorBody } from '../errors.js'
import { edgeErrorOptions, installErrorHandlers } from '../http/error-handlers.js'
import type { RedisClient } from '../redis/client.js'
import type { ApiMetrics } from './metrics.js'
import type { Durability } from '../durability/durability.js'
import { checkReadiness, evictionCheck, postgresCheck, redisCheck, scriptsCheck } from './health.js'
import { checkEvictionPolicy } from '../redis/eviction.js'
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
export interface OpsOptions {
  config: Config
  redis: RedisClient
  sql: postgres.Sql
  metrics: ApiMetrics
  /** The Lua sources readiness keeps loaded (every registered script: src/redis/scripts.ts). */
  scripts: string[]
  /** CLAIM_DURABILITY=replica: every master has the replicas it needs (a failing check names the master). */
  durability: Durability
}

/** What the claim route asks before it writes: why Redis must not take claims now ('' when it may). */
export interface OpsGuard { evictionProblem(): string }

export async function registerOps(app: FastifyInstance, opts: OpsOptions): Promise<OpsGuard> {
  const { config, redis, sql, metrics } = opts
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
  const postgresUp = postgresCheck(sql)
  const readiness = async () => {
    const r = await checkReadiness({
      redis: redisCheck(redis),
      scripts: scriptsCheck(redis, opts.scripts),
      eviction,
      ...(opts.durability.enabled ? { durability: () => opts.durability.check() } : {}),
    }, config.READY_TIMEOUT_MS, { postgres: postgresUp })
    metrics.setBackendUp('postgres', r.checks.postgres === 'ok')
    metrics.setBackendUp('redis', r.checks.redis === 'ok')
    return r
  }
  metrics.setBackendProbe(async () => {
    const r = await checkReadiness({}, config.READY_TIMEOUT_MS, { postgres: postgresUp, redis: redisCheck(redis) })
    metrics.setBackendUp('postgres', r.checks.postgres === 'ok')
    metrics.setBackendUp('redis', r.checks.redis === 'ok')
  })

  // The policy can change under a running instance (CONFIG SET, a failover to a differently configured
  // server): re-checked periodically, logged loudly; /readyz checks it on every probe. An evicting policy
  // also stops claims here at once (a load balancer that ignores /readyz would keep sending them, and every
  // 201 answered then could be evicted). A failed check (Redis unreachable) changes nothing: claims fail
  // on their own then.
  let lastPolicyError = ''
  let evictionProblem = ''
  let checking = false
  const policyTimer = setInterval(() => {
    if (checking) return
    checking = true
    checkEvictionPolicy(redis, config.REDIS_EVICTION_POLICY_ACK).finally(() => { checking = false }).then((status) => {
      evictionProblem = status.ok ? '' : status.message
      if (status.ok) lastPolicyError = ''
      else if (status.message !== lastPolicyError) {
        app.log.error({ err: status.message }, 'redis eviction policy unsafe; claims answer 503 and /readyz 503')
        lastPolicyError = status.message
      }
    }, () => { /* unreachable: the readiness and claim paths report that */ })
  }, config.REDIS_POLICY_CHECK_INTERVAL_MS)
  app.addHook('onClose', (_app, done) => { clearInterval(policyTimer); done() })

  const routeOpts: OpsRoutesOptions = { readiness, metrics, metricsToken: config.METRICS_TOKEN,
    metricsOpenWithoutToken: false }
  await app.register(opsRoutes, routeOpts)

  const guard: OpsGuard = { evictionProblem: () => evictionProblem }
  app.decorate('opsServer', null)
  if (config.METRICS_PORT === undefined) return guard
  const ops = Fastify({ loggerInstance: app.log.child({ listener: 'metrics' }),
    ...httpTimeouts(config), ...edgeErrorOptions() }).withTypeProvider<TypeBoxTypeProvider>()
  installErrorHandlers(ops, { bodyLimit: config.BODY_LIMIT })
  await ops.register(opsRoutes, { ...routeOpts, metricsOpenWithoutToken: true })
  app.opsServer = ops
  // Listening follows the app's lifecycle: a port already taken fails start-up like the API port would.
  app.addHook('onReady', async () => {
    await ops.listen({ port: config.METRICS_PORT!,
      host: config.METRICS_HOST ?? config.HOST })
  })
  app.addHook('onClose', async () => { await ops.close() })
  return guard
}
