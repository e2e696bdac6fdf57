/**
 * Odd input is refused with a 4xx and a stable code: NUL bytes in any text field, duplicated credential
 * headers, a whitespace-only subject, tokens without exp or with exp too far ahead, and X-Request-Id
 * values that are too long or carry unsafe characters.
 */
import t from 'tap'
import net from 'node:net'
import { testEnv, startApp, http, createCampaign, signJwt, ADMIN_TOKEN } from './helper.js'

const now = () => Math.floor(Date.now() / 1000)

/** A raw request, so headers can be repeated exactly as a client sends them. */
function raw(port: number, head: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(head))
    let buf = ''
    s.on('data', (d) => { buf += d.toString() })
    s.on('end', () => resolve({ status: Number(/^HTTP\/1\.1 (\d+)/.exec(buf)?.[1]), text: buf }))
    s.on('error', reject)
  })
}

t.test('NUL, duplicate headers, subjects, exp and request ids', async (t) => {
  const { config, sql } = await testEnv(t, { RATE_LIMIT_IP_MAX: '0', RATE_LIMIT_USER_MAX: '0' })
  const { app, url } = await startApp(t, config)
  const port = (app.server.address() as net.AddressInfo).port
  const id = await createCampaign(url, { name: 'input', stock: 100, perUserLimit: 5 })

  // NUL in a text field: 400 VALIDATION, nothing written.
  const before = (await sql`select count(*)::int as n from campaigns`)[0]!.n
  const nul = await http(`${url}/admin/campaigns`, { admin: true, body: { name: 'bad\u0000name', stock: 1 } })
  t.equal(nul.status, 400)
  t.equal(nul.body.code, 'VALIDATION')
  t.match(nul.body.message, /body\.name contains a NUL character/)
  t.equal((await sql`select count(*)::int as n from campaigns`)[0]!.n, before, 'no campaign written')
  const nulKey = await http(`${url}/admin/campaigns`, { admin: true, body: '{"name":"ok","stock":1,"x\\u0000":1}' })
  t.equal(nulKey.status, 400, 'NUL in a key')
  const nulQuery = await http(`${url}/v1/campaigns/${id}?x=%00`)
  t.equal(nulQuery.status, 400, 'NUL in the query')

  // Two Authorization headers, in either order: 400, never "the first wins".
  const good = signJwt({ sub: 'alice', exp: now() + 600 })
  const bad = 'not-a-token'
  for (const [first, second] of [[good, bad], [bad, good], [good, good]]) {
    const r = await raw(port, `POST /v1/campaigns/${id}/claims HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${first}\r\nauthorization: Bearer ${second}\r\nConnection: close\r\n\r\n`)
    t.equal(r.status, 400, 'duplicate Authorization')
    t.match(r.text, /"code":"VALIDATION"/)
  }
  const adminTwice = await raw(port, `POST /admin/campaigns HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${ADMIN_TOKEN}\r\nAuthorization: Bearer x\r\nContent-Type: application/json\r\nContent-Length: 25\r\nConnection: close\r\n\r\n{"name":"two","stock":1} `)
  t.equal(adminTwice.status, 400, 'duplicate admin Authorization')

  const claimWith = (token: string) => http(`${url}/v1/campaigns/${id}/claims`, { method: 'POST', token })
  // Whitespace-only subjects.
  for (const sub of [' ', '   ', '\t', ' \u00a0 ']) {
    const r = await claimWith(signJwt({ sub, exp: now() + 600 }))
    t.equal(r.status, 401, `sub ${JSON.stringify(sub)}`)
    t.equal(r.body.code, 'UNAUTHORIZED')
  }
  // exp: required, and not too far ahead (JWT_MAX_LIFETIME_S, one day by default).
  const noExp = await claimWith(signJwt({ sub: 'bob' }))
  t.equal(noExp.status, 401, 'token without exp')
  t.match(noExp.body.message, /no exp/)
  const farAhead = await claimWith(signJwt({ sub: 'bob', exp: Date.UTC(2200, 0, 1) / 1000 }))
  t.equal(farAhead.status, 401, 'exp in 2200')
  t.match(farAhead.body.message, /JWT_MAX_LIFETIME_S/)
  t.equal((await claimWith(signJwt({ sub: 'bob', exp: now() + 3600 }))).status, 201, 'an ordinary token still works')

  // X-Request-Id: echoed when short and plain, replaced otherwise.
  const echo = async (value: string) => (await http(`${url}/healthz`, { headers: { 'x-request-id': value } })).headers.get('x-request-id')!
  t.equal(await echo('abc-123_x.y:z'), 'abc-123_x.y:z')
  for (const value of ['a'.repeat(5000), 'a'.repeat(129), 'has space', 'quote"d', '<script>']) {
    const got = await echo(value)
    t.not(got, value, `replaced: ${value.slice(0, 20)}`)
    t.match(got, /^[0-9a-f-]{36}$/, 'a generated id')
  }
  const twice = await raw(port, 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-Id: a\r\nX-Request-Id: b\r\nConnection: close\r\n\r\n')
  t.equal(twice.status, 400, 'duplicate X-Request-Id')
})

t.test('settings: tokens without exp allowed, no lifetime limit', async (t) => {
  const { config } = await testEnv(t, { JWT_REQUIRE_EXP: 'false', JWT_MAX_LIFETIME_S: '0', RATE_LIMIT_IP_MAX: '0' })
  const { url } = await startApp(t, config)
  const id = await createCampaign(url, { name: 'lenient', stock: 10 })
  t.equal((await http(`${url}/v1/campaigns/${id}/claims`, { method: 'POST', token: signJwt({ sub: 'a' }) })).status, 201, 'no exp allowed')
  t.equal((await http(`${url}/v1/campaigns/${id}/claims`, { method: 'POST', token: signJwt({ sub: 'b', exp: Date.UTC(2200, 0, 1) / 1000 }) })).status, 201, 'far exp allowed')
})
