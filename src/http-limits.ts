import { randomUUID } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import type { ServerOptions } from 'node:http'
import type { Config } from './config.js'

/**
 * Slow-client limits (HTTP_*_TIMEOUT_MS): Node checks the header and request deadlines every
 * connectionsCheckingInterval (30 s by default), so the interval follows the shortest deadline.
 */
export function httpTimeouts(config: Config):
  { connectionTimeout: number; keepAliveTimeout: number; requestTimeout: number; http: ServerOptions } {
  return {
    connectionTimeout: config.HTTP_IDLE_TIMEOUT_MS,
    keepAliveTimeout: config.HTTP_KEEPALIVE_TIMEOUT_MS,
    requestTimeout: config.HTTP_REQUEST_TIMEOUT_MS,
    http: {
      headersTimeout: config.HTTP_HEADERS_TIMEOUT_MS,
      requestTimeout: config.HTTP_REQUEST_TIMEOUT_MS,
      keepAliveTimeout: config.HTTP_KEEPALIVE_TIMEOUT_MS,
      connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(config.HTTP_HEADERS_TIMEOUT_MS / 4))),
    },
  }
}

// A caller's X-Request-Id is kept only when short and plain; anything else (long, control characters,
// quotes that would travel into logs and the echoed header) gets a generated id.
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/
export function requestId(req: IncomingMessage): string {
  const given = req.headers['x-request-id']
  return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID()
}
