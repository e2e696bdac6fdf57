import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest,
  type FastifyServerOptions } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { parseCorsOrigins, parseTrustProxy, prettyLogs, type Config } from './config.js'
import { createDb, type DbHandle } from './db/client.js'
import { createRedis, type RedisClient } from './redis/client.js'
import { httpTimeouts, requestId } from './http-limits.js'
import { createKeys } from './redis/keys.js'
import { defineScripts, scriptSources } from './redis/scripts.js'
import { AppError, ErrorCode, campaignRecovering, errorBody } from './errors.js'
import { createCampaignsRepository } from './campaigns/repository.js'
import { createMissingCampaignResolver } from './campaigns/lookup.js'
import { adminCampaignRoutes } from './campaigns/admin-routes.js'
import { publicCampaignRoutes } from './campaigns/public-routes.js'
import { claimRoutes } from './claims/routes.js'
import { CLOCK_SKEW_MARGIN_MS } from './claims/claim-script.js'
import { adminLifecycleRoutes, userLifecycleRoutes } from './lifecycle/routes.js'
import { createApiMetrics } from './ops/metrics.js'
import { registerDocs } from './ops/openapi.js'
import { registerOps } from './ops/plugin.js'
import { createSoldOutCache, type SoldOutCache } from './claims/sold-out-cache.js'
import { subscribeCampaignEvents } from './campaigns/events.js'
import { adminAuthenticator, userAuthenticator } from './auth.js'
import { registerLive } from './live/plugin.js'
import { trackAllowedMethods } from './http/allowed-methods.js'
import { registerCors } from './http/cors.js'
import { edgeErrorOptions, installErrorHandlers } from './http/error-handlers.js'
import { registerQueue } from './queue/plugin.js'
import { createDurability } from './durability/durability.js'
import { durableAnswers } from './durability/answers.js'
import { startRecoverer, type Recoverer } from './recovery/recoverer.js'

// A live-feed read slower than this reports a problem to the viewers (the next read follows anyway).
const LIVE_READ_TIMEOUT_MS = 5000

declare module 'fastify' {
  interface FastifyInstance {
    /** The API's command connection (server.ts checks the eviction policy on it before listening). */
    redis: RedisClient
    /** This instance's local sold-out answers (test/sold-out-cache.test.ts watches it). */
    soldOut: SoldOutCache
  }
  interface FastifyRequest {
    /** Extra fields for this request's completion log line (e.g. a claim's outcome). */
    logFields: Record<string, unknown> | null
  }
}

function registerRequestLog(app: FastifyInstance): void {
  app.decorateRequest('logFields', null)
  if (app.log.level === 'debug' || app.log.level === 'trace') {
    app.addHook('onRequest', (req, _reply, done) => {
      req.log.debug({ req }, 'incoming request')
      done()
    })
  }
  app.addHook('onResponse', (req, reply, done) => {
    req.log.info({
      method: req.method, url: req.url, statusCode: reply.statusCode, responseTime: reply.elapsedTime,
      userId: req.userId || undefined, ...req.logFields,
    }, 'request completed')
    done()
  })
}

const NUL = '\u0000'

/** The path of the first string (or object key) holding a NUL byte: PostgreSQL text cannot store one. */
function findNul(value: unknown, path = 'body', depth = 0): string | null {
  if (typeof value === 'string') return value.includes(NUL) ? path : null
  if (value === null || typeof value !== 'object' || depth > 32) return null
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (k.includes(NUL)) return `${path} key`
    const found = findNul(v, Array.isArray(value) ? `${path}[${k}]` : `${path}.${k}`, depth + 1)
    if (found) return found
  }
  return null
}

/**
 * Refusals before any route code: duplicated credential or id headers (Node keeps only the first
 * Authorization, so "good + bad" and "bad + good" would answer differently), and NUL bytes anywhere in
 * the body, query or params.
 */
function registerInputGuards(app: FastifyInstance, config: Config): void {
  const single = new Set(['authorization', 'idempotency-key', 'x-request-id'])
  if (config.TRUSTED_USER_HEADER) single.add(config.TRUSTED_USER_HEADER.toLowerCase())
  app.addHook('onRequest', (req: FastifyRequest, reply: FastifyReply, done) => {
    const raw = req.raw.rawHeaders
    const seen = new Set<string>()
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!.toLowerCase()
      if (!single.has(name)) continue
      if (seen.has(name)) {
        reply.code(400).send(errorBody(400, ErrorCode.VALIDATION, `header ${name} must be sent once`))
        return
      }
      seen.add(name)
    }
    done()
  })
  app.addHook('preValidation', (req: FastifyRequest, reply: FastifyReply, done) => {
    const where = findNul(req.body) ?? findNul(req.query, 'query') ?? findNul(req.params, 'params')
    if (where) {
      reply.code(400).send(errorBody(400, ErrorCode.VALIDATION, `${where} contains a NUL character`))
      return
    }
    done()
  })
}

/** Server options shared by production and tests, so both run the same limits and parsers. */
export function serverOptions(config: Config): FastifyServerOptions {
  const pretty = prettyLogs(config)
  return {
    bodyLimit: config.BODY_LIMIT,
    ...httpTimeouts(config),
    // A hop count is valid for Fastify (proxy-addr) though its types omit it.
    trustProxy: parseTrustProxy(config.TRUST_PROXY) as FastifyServerOptions['trustProxy'],
    requestIdHeader: false,
    genReqId: requestId,
    // Requests arriving while closing get our own 503 SHUTTING_DOWN body (src/ops/plugin.ts).
    return503OnClosing: false,
    ...edgeErrorOptions(),
    // One info line per request, written at completion by the hook in registerRequestLog (fastify's
    // default is two, plus the claim's own): logging was the largest single cost per claim.
    // (through logController: the top-level option prints a non-JSON deprecation warning on stderr).
    logController: new LogController({ disableRequestLogging: true }),
    logger: {
      level: config.LOG_LEVEL,
      redact: ['req.headers.authorization', 'req.headers.cookie'],
      ...(pretty ? { transport: { target: 'pino-pretty' } } : {}),
    },
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: true } },
  }
}

export interface AppDeps { redis?: RedisClient; db?: DbHandle }

/** Builds the API without listening. Owns the Redis and database clients it creates and closes them. */
export async function buildApp(config: Config, deps: AppDeps = {}): Promise<FastifyInstance> {
  const app = Fastify(serverOptions(config)).withTypeProvider<TypeBoxTypeProvider>()
  registerRequestLog(app)
  const allowedMethods = trackAllowedMethods(app)
  app.decorateRequest('userId', '') // set by the user authenticator (src/auth.ts)

  // ioredis's own command timer runs one clock-skew margin longer than the claim route's bound, so a claim's
  // late reply is still read (and answered 201) rather than dropped after its script ran in time.
  const redis = deps.redis ?? createRedis(config, { connectionName: 'fcfs-api', log: app.log,
    commandTimeoutMs: config.REDIS_COMMAND_TIMEOUT_MS + CLOCK_SKEW_MARGIN_MS })
  const db = deps.db ?? createDb(config.DATABASE_URL, { connectTimeoutMs: config.PG_CONNECT_TIMEOUT_MS,
    statementTimeoutMs: config.PG_STATEMENT_TIMEOUT_MS, idleInTransactionTimeoutMs: 10_000 })
  defineScripts(redis)
  const keys = createKeys(config.KEY_PREFIX, config.STREAM_PARTITIONS)
  const campaigns = createCampaignsRepository(db.db)
  const metrics = createApiMetrics(redis, keys, app.log, config.READY_TIMEOUT_MS)
  const soldOut = createSoldOutCache(config.SOLD_OUT_CACHE_MS)
  const events = config.SOLD_OUT_CACHE_MS > 0 ? subscribeCampaignEvents(config, keys, soldOut, app.log) : null
  // Set once the ops plugin can say whether the eviction policy is safe (below); kicks before that wait a sweep.
  let recoverer: Recoverer | null = null
  const recovery = config.RECOVERY_INTERVAL_MS > 0
  const missing = createMissingCampaignResolver(campaigns, recovery ? (id) => recoverer?.kick(id) : undefined)
  const durability = createDurability(config, redis, keys, app.log, 'fcfs-api')
  const durable = durableAnswers(durability, keys, config.CLAIM_DURABILITY_TIMEOUT_MS)
  app.decorate<RedisClient>('redis', redis)
  app.decorate('soldOut', soldOut)
  app.addHook('onClose', async () => {
    await recoverer?.close()
    await events?.close()
    await durability.close()
    if (!deps.redis) await redis.quit().catch(() => redis.disconnect())
    if (!deps.db) await db.close()
  })

  // "No body needed": an empty body sent as application/json is no body, not a parse error.
  const jsonParser = app.getDefaultJsonParser('error', 'ignore')
  app.removeContentTypeParser('application/json')
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    // The body is decoded as UTF-8: one declared in another charset would be read wrong, so it is refused.
    const charset = /;\s*charset\s*=\s*"?([^";\s]*)/i.exec(req.headers['content-type'] ?? '')?.[1]?.toLowerCase()
    if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
      return done(new AppError(415, ErrorCode.UNSUPPORTED_MEDIA_TYPE,
        `charset ${charset || '(empty)'} is not supported: send UTF-8 JSON`), undefined)
    }
    if (body === '' || (typeof body === 'string' && body.trim() === '')) return done(null, undefined)
    jsonParser(req, body as string, done)
  })
  // JSON only: without fastify's default text/plain parser a text body gets 415 like every other media type.
  app.removeContentTypeParser('text/plain')

  installErrorHandlers(app, { bodyLimit: config.BODY_LIMIT, allowedMethods })
  registerInputGuards(app, config)

  // Each feature gets only what it uses; its options type (in its own module) says what that is.
  const adminAuth = adminAuthenticator(config)
  const authenticate = userAuthenticator(config)
  // A unit came back or stock was added: this instance stops answering 410 at once, the others when they
  // hear the campaign-changed event the route publishes.
  const forgetSoldOut = (id: string) => soldOut.forget(id)
  await registerCors(app, parseCorsOrigins(config.CORS_ORIGINS))
  await registerDocs(app)
  const ops = await registerOps(app, { config, redis, sql: db.sql, metrics, scripts: Object.values(scriptSources()),
    durability })
  await app.register(adminCampaignRoutes, { adminAuth, redis, keys, db: db.db, campaigns, forgetSoldOut })
  await app.register(publicCampaignRoutes, { redis, keys, whyMissing: missing.whyMissing })
  // Before the claim route: its answer-counting hook must exist when that route is added.
  await registerQueue(app, { redis, keys, db: db.db, campaigns, authenticate, adminAuth, tickMs: config.QUEUE_TICK_MS,
    whyMissing: missing.whyMissing, errorForMissing: missing.errorForMissing })
  if (recovery) {
    recoverer = startRecoverer({ redis, db: db.db, keys, log: app.log, intervalMs: config.RECOVERY_INTERVAL_MS,
      unsafe: ops.evictionProblem, lateGraceMs: config.PG_STATEMENT_TIMEOUT_MS })
  }
  const fenced = recovery ? (id: string) => { recoverer?.kick(id); return campaignRecovering(id) } : undefined
  await app.register(claimRoutes, { config, redis, keys, authenticate, soldOut, metrics, campaigns, durable,
    evictionProblem: ops.evictionProblem, whyMissing: missing.whyMissing, errorForMissing: missing.errorForMissing,
    fenced })
  await registerLive(app, {
    redis, sql: db.sql, keys, adminAuth,
    answersByStatus: metrics.answersByStatus, registry: metrics.registry,
    campaignStatus: async (id) => {
      const row = await campaigns.get(id)
      return row === null ? 'unknown' : row.archivedAt ? 'archived' : 'active'
    },
    intervalMs: config.LIVE_INTERVAL_MS, timeoutMs: LIVE_READ_TIMEOUT_MS, workerGroup: config.WORKER_GROUP,
  })
  const lifecycle = { authenticate, adminAuth, redis, keys, db: db.db, campaigns, metrics, forgetSoldOut,
    whyMissing: missing.whyMissing, durable, fenced }
  await app.register(userLifecycleRoutes, lifecycle)
  await app.register(adminLifecycleRoutes, lifecycle)
  return app
}
