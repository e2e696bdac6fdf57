import type { Socket } from 'node:net'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { AppError, ErrorCode, RETRY_AFTER_S, errorBody, isBackendDown } from '../errors.js'

/**
 * The error answers of every listener (the API and the private metrics one): one body shape, a stable
 * `code`, and a Retry-After on every 503 whichever path produced it. With `allowedMethods`, an unknown
 * method on a known path answers 405 with `Allow` instead of 404.
 */
export function installErrorHandlers(app: FastifyInstance, opts: {
  bodyLimit: number
  allowedMethods?: (path: string) => string[]
}): void {
  app.addHook('onSend', (_req, reply, payload, done) => {
    if (reply.statusCode === 503 && !reply.hasHeader('retry-after')) reply.header('retry-after', String(RETRY_AFTER_S))
    done(null, payload)
  })
  app.setErrorHandler((err: FastifyError | AppError, req, reply) => {
    if (err instanceof AppError) return reply.code(err.statusCode).send(err.toBody())
    if (err.validation) return reply.code(400).send(errorBody(400, ErrorCode.VALIDATION, err.message))
    const status = err.statusCode ?? 500
    if (status === 413) return reply.code(413).send(errorBody(413, ErrorCode.PAYLOAD_TOO_LARGE,
      `body larger than ${opts.bodyLimit} bytes`))
    if (status === 415) return reply.code(415).send(errorBody(415, ErrorCode.UNSUPPORTED_MEDIA_TYPE,
      'send application/json or no body'))
    if (status >= 400 && status < 500) return reply.code(status).send(errorBody(status, ErrorCode.VALIDATION,
      err.message))
    if (isBackendDown(err)) {
      req.log.error({ err, userId: req.userId || undefined }, 'backend unavailable')
      return reply.code(503).header('retry-after', String(RETRY_AFTER_S))
        .send(errorBody(503, ErrorCode.BACKEND_UNAVAILABLE, 'a backing store is unavailable; retry shortly'))
    }
    req.log.error({ err, userId: req.userId || undefined }, 'request failed')
    return reply.code(500).send(errorBody(500, ErrorCode.INTERNAL, 'internal error'))
  })
  app.setNotFoundHandler((req, reply) => {
    const path = req.url.split('?')[0]!
    const allow = opts.allowedMethods?.(path) ?? []
    if (allow.length > 0) {
      return reply.code(405).header('allow', allow.join(', '))
        .send(errorBody(405, ErrorCode.METHOD_NOT_ALLOWED,
          `${req.method} is not allowed on ${path}; allowed: ${allow.join(', ')}`))
    }
    reply.code(404).send(errorBody(404, ErrorCode.NOT_FOUND, `route ${req.method} ${path} not found`))
  })
}

/**
 * Answers produced before any route runs, in the same body shape and closed set of codes: the router's
 * refusals (a path parameter over maxParamLength, 100 characters: 414 URI_TOO_LONG; a malformed URL
 * component: 400 VALIDATION) through fastify's frameworkErrors, and Node's HTTP parser's (headers over
 * its 16 KB limit: 431 HEADERS_TOO_LARGE; a request not complete within requestTimeout: 408
 * REQUEST_TIMEOUT; anything unparseable: 400 VALIDATION) through clientError, which fastify would answer
 * without a code.
 */
export function edgeErrorOptions() {
  return {
    frameworkErrors(err: FastifyError, _req: FastifyRequest, reply: FastifyReply) {
      if (err.code === 'FST_ERR_MAX_PARAM_LENGTH') {
        return reply.code(414).send(errorBody(414, ErrorCode.URI_TOO_LONG,
          'a path parameter is longer than 100 characters'))
      }
      return reply.code(400).send(errorBody(400, ErrorCode.VALIDATION, err.message))
    },
    clientErrorHandler(err: Error & { code?: string }, socket: Socket) {
      // A reset connection has nobody left to answer.
      if (err.code === 'ECONNRESET' || socket.destroyed) return
      const [status, code, message] = err.code === 'HPE_HEADER_OVERFLOW'
        ? [431, ErrorCode.HEADERS_TOO_LARGE, 'request headers larger than 16 KB']
        : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? [408, ErrorCode.REQUEST_TIMEOUT, 'request not received in time']
          : [400, ErrorCode.VALIDATION, 'malformed HTTP request']
      const body = JSON.stringify(errorBody(status, code, message))
      if (socket.writable) {
        socket.write(`HTTP/1.1 ${status} ${errorBody(status, code, message).error}\r\nConnection: close\r\n` +
          `Content-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`)
      }
      socket.destroy(err)
    },
  }
}
