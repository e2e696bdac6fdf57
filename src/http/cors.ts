import cors from '@fastify/cors'
import type { FastifyInstance, FastifyRequest } from 'fastify'

// The routes a shop's browser front end calls: the claim, and the user-facing reads. Admin, ops and docs
// routes never answer cross-origin requests.
const BROWSER_ROUTES = [/^\/v1\/campaigns\/[^/]+$/, /^\/v1\/campaigns\/[^/]+\/claims$/, /^\/v1\/campaigns\/[^/]+\/claims\/me$/]

/** CORS for CORS_ORIGINS (exact origins); without it nothing is registered and no CORS header is sent. */
export async function registerCors(app: FastifyInstance, origins: string[] | null): Promise<void> {
  if (!origins) return
  const allowed = {
    origin: origins,
    methods: ['GET', 'HEAD', 'POST'],
    allowedHeaders: ['authorization', 'content-type', 'idempotency-key', 'x-request-id'],
    // Without these a browser script cannot read the headers a client needs to act on.
    exposedHeaders: ['retry-after', 'idempotent-replayed', 'x-request-id'],
    maxAge: 600,
    strictPreflight: false,
  }
  await app.register(cors, {
    delegator: (req: FastifyRequest, cb: (err: Error | null, opts: object) => void) => {
      const path = req.url.split('?')[0]!
      cb(null, BROWSER_ROUTES.some((re) => re.test(path)) ? allowed : { origin: false })
    },
  })
}
