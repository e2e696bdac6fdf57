/**
 * The answers at the edges of HTTP keep the one body shape and the closed set of codes: a path parameter
 * too long for the router (414), headers too large for Node's parser (431), a token issued in the future
 * (401), a body in a charset other than UTF-8 (415).
 */
import net from 'node:net'
import t from 'tap'
import { ErrorCode } from '../src/errors.js'
import { IAT_LEEWAY_S } from '../src/auth.js'
import { createKeys } from '../src/redis/keys.js'
import { testEnv, startApp, createCampaign, http, signJwt, claim, userToken } from './helper.js'

const CODES = new Set<string>(Object.values(ErrorCode))

/** Sends raw bytes, resolves with the whole answer once the server closes or answers completely. */
function rawRequest(port: number, request: string): Promise<{ status: number; headers: string; body: string }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1')
    let data = ''
    s.on('data', (d) => { data += d.toString('latin1') })
    s.on('error', () => {}) // the server resets the connection after answering
    s.on('close', () => {
      const m = /^HTTP\/1\.1 (\d{3})[^\r]*\r\n([\s\S]*?)\r\n\r\n([\s\S]*)$/.exec(data)
      if (!m) return reject(new Error(`no HTTP answer: ${JSON.stringify(data.slice(0, 200))}`))
      resolve({ status: Number(m[1]), headers: m[2]!, body: m[3]! })
    })
    s.write(request)
  })
}

t.test('414, 431, future iat and non-UTF-8 bodies answer documented codes', async (t) => {
  const { config, redis } = await testEnv(t, { RATE_LIMIT_IP_MAX: '0', RATE_LIMIT_USER_MAX: '0' })
  const { url } = await startApp(t, config)
  const port = Number(new URL(url).port)
  const id = await createCampaign(url, { name: 'edges', stock: 10, perUserLimit: 10 })

  const long = await http(`${url}/v1/campaigns/${id}/claims/${'a'.repeat(10_000)}`,
    { method: 'DELETE', token: userToken('u1') })
  t.same([long.status, long.body.code, long.body.statusCode], [414, ErrorCode.URI_TOO_LONG, 414])
  t.match(long.headers.get('content-type'), /^application\/json/)
  const longId = await http(`${url}/admin/campaigns/${'9'.repeat(10_000)}`, { admin: true })
  t.same([longId.status, longId.body.code], [414, ErrorCode.URI_TOO_LONG])

  const big = await rawRequest(port, `POST /v1/campaigns/${id}/claims HTTP/1.1\r\nHost: x\r\n` +
    `Authorization: Bearer ${'x'.repeat(64 * 1024)}\r\nContent-Length: 0\r\n\r\n`)
  t.equal(big.status, 431)
  t.match(big.headers, /content-type: application\/json/i)
  t.same(JSON.parse(big.body), { statusCode: 431, code: ErrorCode.HEADERS_TOO_LARGE,
    error: 'Request Header Fields Too Large', message: 'request headers larger than 16 KB' })

  const garbage = await rawRequest(port, 'NOT HTTP AT ALL\r\n\r\n')
  t.equal(garbage.status, 400)
  t.equal(JSON.parse(garbage.body).code, ErrorCode.VALIDATION)

  const now = Math.floor(Date.now() / 1000)
  const future = signJwt({ sub: 'time-traveller', exp: now + 7200, iat: now + 3600 })
  const refused = await http(`${url}/v1/campaigns/${id}/claims`, { method: 'POST', token: future })
  t.same([refused.status, refused.body.code], [401, ErrorCode.UNAUTHORIZED])
  t.match(refused.body.message, /issued in the future/)
  // Within the leeway (a clock a little ahead) the token is fine.
  const skewed = signJwt({ sub: 'skewed', exp: now + 3600, iat: now + IAT_LEEWAY_S - 20 })
  t.equal((await http(`${url}/v1/campaigns/${id}/claims`, { method: 'POST', token: skewed })).status, 201)
  const keys = createKeys(config.KEY_PREFIX, config.STREAM_PARTITIONS)
  t.equal(await redis.hexists(keys.users(id), 'time-traveller'), 0, 'nothing issued to the refused token')
  t.equal(await redis.hexists(keys.users(id), 'skewed'), 1)

  for (const charset of ['utf-16', 'latin1', 'UTF-16LE', '']) {
    const res = await http(`${url}/v1/campaigns/${id}/claims`, { method: 'POST', token: userToken(`cs-${charset}`),
      body: '{}', headers: { 'content-type': `application/json; charset=${charset}` } })
    t.same([res.status, res.body.code], [415, ErrorCode.UNSUPPORTED_MEDIA_TYPE], `charset=${charset}`)
  }
  for (const charset of ['utf-8', 'UTF-8', 'utf8', '"utf-8"']) {
    const res = await http(`${url}/v1/campaigns/${id}/claims`, { method: 'POST', token: userToken(`ok-${charset}`),
      body: '{}', headers: { 'content-type': `application/json; charset=${charset}` } })
    t.equal(res.status, 201, `charset=${charset}`)
  }
  const admin = await http(`${url}/admin/campaigns`, { method: 'POST', admin: true,
    body: JSON.stringify({ name: 'x', stock: 1 }), headers: { 'content-type': 'application/json; charset=utf-16' } })
  t.same([admin.status, admin.body.code], [415, ErrorCode.UNSUPPORTED_MEDIA_TYPE])

  for (const [what, res] of Object.entries({ long, longId, refused, admin })) {
    t.ok(CODES.has(res.body.code), `${what}: ${res.body.code} is in the documented set`)
  }
  t.ok((await claim(url, id, 'after')).status === 201, 'the API still answers')
})
