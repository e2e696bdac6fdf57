import { timingSafeEqual, createHash } from 'node:crypto'
import type { FastifyRequest } from 'fastify'
import { createVerifier } from 'fast-jwt'
import type { Config } from './config.js'
import { AppError, ErrorCode } from './errors.js'

declare module 'fastify' {
  interface FastifyRequest { userId: string }
}

// Any printable id a gateway or IdP may use (uuids, emails, 'auth0|123'); no control characters.
// eslint-disable-next-line no-control-regex -- refusing control characters is the point
const USER_ID = /^[^\x00-\x1f\x7f]{1,256}$/
const unauthorized = (message: string) => new AppError(401, ErrorCode.UNAUTHORIZED, message)
/** Clock skew allowed between the token issuer and this server: an iat further ahead is refused. */
export const IAT_LEEWAY_S = 60

/**
 * HS256 only: pinning the algorithm rejects alg=none and key confusion. One fast-jwt verifier built at
 * start-up and called directly: through @fastify/jwt every request decoded its token twice and merged
 * verifier options (the bench's CPU profile showed it).
 */
function jwtVerifier(config: Config): ((token: string) => { sub?: unknown; exp?: unknown; iat?: unknown }) | null {
  if (!config.JWT_SECRET) return null
  return createVerifier({
    key: config.JWT_SECRET,
    algorithms: ['HS256'],
    // A token without exp never expires: refused unless JWT_REQUIRE_EXP=false.
    ...(config.JWT_REQUIRE_EXP ? { requiredClaims: ['exp'] } : {}),
    ...(config.JWT_ISSUER ? { allowedIss: config.JWT_ISSUER } : {}),
    ...(config.JWT_AUDIENCE ? { allowedAud: config.JWT_AUDIENCE } : {}),
  })
}

/** onRequest hook that sets request.userId from the trusted header or the JWT's sub. */
export function userAuthenticator(config: Config): Authenticator {
  const header = config.TRUSTED_USER_HEADER?.toLowerCase()
  const verify = jwtVerifier(config)
  const maxLifetimeS = config.JWT_MAX_LIFETIME_S
  return async function authenticate(req: FastifyRequest): Promise<void> {
    let sub: unknown
    if (header) {
      sub = req.headers[header]
      if (typeof sub !== 'string' || sub === '') throw unauthorized(`missing ${header} header`)
    } else {
      const auth = req.headers.authorization
      const m = auth ? /^Bearer\s+(\S+)$/i.exec(auth) : null
      if (!m || !verify) throw unauthorized('missing bearer token')
      let claims: { sub?: unknown; exp?: unknown; iat?: unknown }
      try {
        claims = verify(m[1]!)
      } catch (err) {
        const code = (err as { code?: string }).code ?? ''
        if (code.includes('EXPIRED')) throw unauthorized('token expired')
        if (code.includes('MISSING_REQUIRED_CLAIM')) throw unauthorized('token has no exp (JWT_REQUIRE_EXP)')
        throw unauthorized('invalid token')
      }
      // A token valid far into the future (leaked, or minted by mistake) is refused (JWT_MAX_LIFETIME_S).
      if (maxLifetimeS > 0 && typeof claims.exp === 'number' && claims.exp - Date.now() / 1000 > maxLifetimeS) {
        throw unauthorized(`token expires more than ${maxLifetimeS} s ahead (JWT_MAX_LIFETIME_S)`)
      }
      // A token issued in the future was minted by a wrong clock or forged with a stolen key to outlive
      // JWT_MAX_LIFETIME_S; the verifier only checks iat against a maxAge, which is not set.
      if (typeof claims.iat === 'number' && claims.iat - Date.now() / 1000 > IAT_LEEWAY_S) {
        throw unauthorized(`token issued in the future (iat more than ${IAT_LEEWAY_S} s ahead)`)
      }
      sub = claims.sub
    }
    // Whitespace-only ids would all be different "users" that no person can be told apart by.
    if (typeof sub !== 'string' || !USER_ID.test(sub) || sub.trim() === '') {
      throw unauthorized('token subject is not a valid user id')
    }
    req.userId = sub
  }
}

/** An onRequest hook (user or admin): throws the answer when the request may not pass. */
export type Authenticator = (req: FastifyRequest) => Promise<void>

/**
 * Whether a request's `Authorization: Bearer <token>` carries exactly this token (admin and metrics tokens).
 * Digests are compared, so the comparison takes the same time whatever the presented token's length.
 */
export function bearerMatcher(token: string): (req: FastifyRequest) => boolean {
  const expected = createHash('sha256').update(token).digest()
  return (req) => {
    const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')
    return m !== null && timingSafeEqual(createHash('sha256').update(m[1]!).digest(), expected)
  }
}

/** onRequest hook for admin routes: 503 when no ADMIN_TOKEN is configured, 401 on a wrong one. */
export function adminAuthenticator(config: Config): Authenticator {
  const matches = config.ADMIN_TOKEN ? bearerMatcher(config.ADMIN_TOKEN) : null
  return async function authenticateAdmin(req: FastifyRequest): Promise<void> {
    if (!matches) throw new AppError(503, ErrorCode.ADMIN_DISABLED,
      'admin routes are disabled: ADMIN_TOKEN is not set')
    if (!matches(req)) throw unauthorized('missing or wrong admin token')
  }
}
