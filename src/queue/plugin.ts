import type { FastifyInstance } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { Db } from '../db/client.js'
import { createQueueAdvancer } from './advancer.js'
import { queueRoutes, type QueueRoutesOptions } from './routes.js'
import { queueReportRoutes, type QueueReportOptions } from './report.js'

/**
 * The waiting room (issue 21): its user and public routes, the waiting page, the drop report, and this
 * instance's share of advancing admission (started once the app listens' plugins are ready, stopped on close).
 */
export async function registerQueue(app: FastifyInstance, opts: QueueRoutesOptions &
  Omit<QueueReportOptions, 'db'> & { db: Db; tickMs: number }): Promise<void> {
  const advancer = createQueueAdvancer({ redis: opts.redis, db: opts.db, keys: opts.keys, log: app.log,
    tickMs: opts.tickMs })
  const typed = app.withTypeProvider<TypeBoxTypeProvider>()
  await typed.register(queueRoutes, opts)
  await typed.register(queueReportRoutes, opts)
  // Claim answers on queued campaigns, for the drop report (summed in Redis by every instance).
  app.addHook('onResponse', (req, reply, done) => {
    if (req.method === 'POST' && req.routeOptions.url === '/v1/campaigns/:id/claims') {
      advancer.countClaimAnswer((req.params as { id: string }).id, reply.statusCode)
    }
    done()
  })
  app.addHook('onReady', async () => { advancer.start() })
  app.addHook('preClose', async () => { await advancer.stop() })
}
