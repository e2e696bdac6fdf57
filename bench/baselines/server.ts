/**
 * The three baselines behind the same Fastify server options and the same user authentication as the
 * API (src/auth.ts), one process like the API, so only the claim mechanism differs.
 * Campaigns are set up by the orchestrator (bench/scenarios.ts), not over HTTP.
 */
import Fastify, { type FastifyReply } from 'fastify'
import closeWithGrace from 'close-with-grace'
import { loadConfig } from '../../src/config.js'
import { serverOptions } from '../../src/app.js'
import { userAuthenticator } from '../../src/auth.js'
import { createRedis } from '../../src/redis/client.js'
import { createDb } from '../../src/db/client.js'
import { AppError, ErrorCode, errorBody } from '../../src/errors.js'
import { dbLockClaim } from './db-lock.js'
import { defineReleaseLock, redisLockClaim } from './redis-lock.js'
import { createTwoStep } from './two-step.js'
import type { BaselineOutcome } from './outcome.js'

const config = loadConfig(process.env)
const app = Fastify(serverOptions(config))
// The baselines are single-node designs (their keys span slots): always the Redis of REDIS_URL.
const redis = createRedis({ REDIS_URL: config.REDIS_URL },
  { connectionName: 'fcfs-bench-baselines', log: app.log, commandTimeoutMs: config.REDIS_COMMAND_TIMEOUT_MS })
defineReleaseLock(redis)
const db = createDb(config.DATABASE_URL)
const prefix = config.KEY_PREFIX
const twoStep = createTwoStep(redis, prefix)

app.setErrorHandler((err: Error & { statusCode?: number }, req, reply) => {
  if (err instanceof AppError) return reply.code(err.statusCode).send(err.toBody())
  req.log.error({ err }, 'baseline claim failed')
  return reply.code(500).send(errorBody(500, ErrorCode.INTERNAL, 'internal error'))
})
app.decorateRequest('userId', '')
const authenticate = userAuthenticator(config)

function send(reply: FastifyReply, id: string, o: BaselineOutcome) {
  switch (o.kind) {
    case 'issued': return reply.code(201).send({ campaignId: id, sequence: o.sequence })
    case 'at_limit': throw new AppError(409, ErrorCode.ALREADY_CLAIMED, 'user already holds a claim')
    case 'sold_out': throw new AppError(410, ErrorCode.SOLD_OUT, `campaign ${id} is sold out`)
    case 'not_found': throw new AppError(404, ErrorCode.CAMPAIGN_NOT_FOUND, `campaign ${id} does not exist`)
    case 'busy': throw new AppError(503, ErrorCode.CAMPAIGN_UNAVAILABLE, 'lock not acquired in time')
  }
}

type Claim = (id: string, userId: string) => Promise<BaselineOutcome>
const route = (name: string, claim: Claim) =>
  app.post<{ Params: { id: string } }>(`/baselines/${name}/:id/claims`, { onRequest: authenticate },
    async (req, reply) => send(reply, req.params.id, await claim(req.params.id, req.userId)))
route('db-lock', (id, user) => dbLockClaim(db.sql, id, user))
route('redis-lock', (id, user) => redisLockClaim(redis, prefix, id, user))
route('two-step', twoStep)

app.addHook('onClose', async () => {
  await redis.quit().catch(() => redis.disconnect())
  await db.close()
})
closeWithGrace({ delay: 10_000 }, () => app.close())
await app.listen({ port: config.PORT, host: config.HOST })
