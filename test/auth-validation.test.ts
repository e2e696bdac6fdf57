import t from 'tap'
import { testEnv, startApp, createCampaign, claim, http, signJwt, userToken, JWT_SECRET, one } from './helper.js'
import { createKeys } from '../src/redis/keys.js'

const now = () => Math.floor(Date.now() / 1000)

t.test('authentication and bad input change nothing', async (t) => {
  const { config, redis } = await testEnv(t, { JWT_ISSUER: 'shop', JWT_AUDIENCE: 'fcfs' })
  const { url } = await startApp(t, config)
  const keys = createKeys(config.KEY_PREFIX, config.STREAM_PARTITIONS)
  const id = await createCampaign(url, { name: 'guarded', stock: 10 })
  const snapshot = async () => [await redis.hgetall(keys.campaign(id)), await redis.hlen(keys.users(id)),
    await redis.xlen(keys.streamOf(id))]
  const before = await snapshot()
  const good = { iss: 'shop', aud: 'fcfs', exp: now() + 600 }
  const claimWith = (authorization?: string, extra: { body?: unknown; headers?: Record<string, string> } = {}) =>
    http(`${url}/v1/campaigns/${id}/claims`,
      { method: 'POST', headers: { ...(authorization ? { authorization } : {}), ...extra.headers }, body: extra.body })

  const cases: [string, string | undefined][] = [
    ['missing token', undefined],
    ['not a bearer', 'Basic dXNlcjpwdw=='],
    ['malformed', 'Bearer not.a.jwt'],
    ['garbage', 'Bearer abc'],
    ['expired', `Bearer ${signJwt({ ...good, sub: 'u', exp: now() - 10 })}`],
    ['wrong secret', `Bearer ${signJwt({ ...good, sub: 'u' }, { secret: 'another-secret-0123456789abcdef' })}`],
    ['alg none', `Bearer ${signJwt({ ...good, sub: 'u' }, { alg: 'none' })}`],
    ['alg HS512 (not pinned)', `Bearer ${signJwt({ ...good, sub: 'u' }, { alg: 'HS512' })}`],
    ['wrong issuer', `Bearer ${signJwt({ ...good, iss: 'evil', sub: 'u' })}`],
    ['wrong audience', `Bearer ${signJwt({ ...good, aud: 'other', sub: 'u' })}`],
    ['no sub', `Bearer ${signJwt({ ...good })}`],
    ['numeric sub', `Bearer ${signJwt({ ...good, sub: 42 })}`],
    ['sub with a control character', `Bearer ${signJwt({ ...good, sub: 'a\nb' })}`],
    ['empty sub', `Bearer ${signJwt({ ...good, sub: '' })}`],
  ]
  for (const [name, authz] of cases) {
    const r = await claimWith(authz)
    t.equal(r.status, 401, name)
    t.equal(r.body.code, 'UNAUTHORIZED', name)
    t.same(Object.keys(r.body).sort(), ['code', 'error', 'message', 'statusCode'], `${name}: error body shape`)
  }
  t.equal((await http(`${url}/v1/campaigns/${id}/claims/me`)).status, 401)

  const token = `Bearer ${signJwt({ ...good, sub: 'valid-user' })}`
  for (const [name, body, ct, status, code] of [
    ['body with properties', { foo: 1 }, undefined, 400, 'VALIDATION'],
    ['invalid JSON', '{"a":', undefined, 400, 'VALIDATION'],
    ['array body', [1, 2], undefined, 400, 'VALIDATION'],
    ['2 MB body', 'x'.repeat(2 * 1024 * 1024), 'application/json', 413, 'PAYLOAD_TOO_LARGE'],
    ['text body', 'hello', 'text/plain', 415, 'UNSUPPORTED_MEDIA_TYPE'],
    ['xml body', '<a/>', 'application/xml', 415, 'UNSUPPORTED_MEDIA_TYPE'],
  ] as const) {
    const r = await claimWith(token, { body, headers: ct ? { 'content-type': ct } : {} })
    t.equal(r.status, status, name)
    t.equal(r.body.code, code, name)
    t.notMatch(JSON.stringify(r.body), /at .*\.(js|ts):\d+/, `${name}: no stack trace`)
  }
  t.same(await snapshot(), before, 'no counter, record or stream entry changed')

  const ok = await claimWith(token, { body: '', headers: { 'content-type': 'application/json' } })
  t.equal(ok.status, 201, 'an empty JSON body is no body')
})

t.test('admin routes', async (t) => {
  const { config, sql } = await testEnv(t)
  const { url } = await startApp(t, config)
  const post = (body: unknown, authorization?: string) =>
    http(`${url}/admin/campaigns`, { method: 'POST', body, headers: authorization ? { authorization } : {} })
  for (const authz of [undefined, 'Bearer wrong-token-0123456789', 'Basic abc', `Bearer ${userToken('u')}`]) {
    const r = await post({ name: 'x', stock: 1 }, authz)
    t.equal(r.status, 401)
    t.equal(r.body.code, 'UNAUTHORIZED')
  }
  const admin = `Bearer ${config.ADMIN_TOKEN}`
  const bad: unknown[] = [
    {}, { name: 'x' }, { name: '', stock: 1 }, { name: 'x', stock: 0 }, { name: 'x', stock: 1.5 }, { name: 'x',
      stock: '10' },
    { name: 'x', stock: 1, perUserLimit: 0 }, { name: 'x', stock: 1, opensAt: 'tomorrow' }, { name: 'x', stock: 1,
      extra: true },
    { name: 'x', stock: 1, opensAt: '2030-01-02T00:00:00Z', closesAt: '2030-01-01T00:00:00Z' },
  ]
  for (const body of bad) {
    const r = await post(body, admin)
    t.equal(r.status, 400, JSON.stringify(body))
    t.equal(r.body.code, 'VALIDATION')
  }
  const { n } = one(await sql`SELECT count(*)::int AS n FROM campaigns`)
  t.equal(n, 0, 'no campaign written by a rejected request')

  const created = await post({ name: 'Festival', stock: 300, perUserLimit: 2, opensAt: '2030-01-01T00:00:00.000Z' },
    admin)
  t.equal(created.status, 201)
  t.same(created.body, { id: created.body.id, name: 'Festival', stock: 300, perUserLimit: 2,
    opensAt: '2030-01-01T00:00:00.000Z', closesAt: null, holdSeconds: null, queue: null })
  t.type(created.body.id, 'string')
  for (const body of [{}, { add: 0 }, { add: -1 }, { add: 'x' }, { add: 1, more: 1 }]) {
    const r = await http(`${url}/admin/campaigns/${created.body.id}/stock`, { method: 'POST', admin: true, body })
    t.equal(r.status, 400)
  }
  t.equal((await http(`${url}/admin/campaigns/${created.body.id}/stock`, { method: 'POST', body: { add: 1 } })).status,
    401)
  t.equal((await http(`${url}/admin/campaigns/${created.body.id}`, { admin: true })).body.stock, 300)
  const notFound = await http(`${url}/nope`)
  t.equal(notFound.status, 404)
  t.equal(notFound.body.code, 'NOT_FOUND')
})

t.test('without ADMIN_TOKEN the admin routes answer 503 ADMIN_DISABLED', async (t) => {
  const { config } = await testEnv(t)
  const { url } = await startApp(t, { ...config, ADMIN_TOKEN: undefined })
  const r = await http(`${url}/admin/campaigns`,
    { method: 'POST', body: { name: 'x', stock: 1 }, headers: { authorization: 'Bearer anything-at-all-123' } })
  t.equal(r.status, 503)
  t.equal(r.body.code, 'ADMIN_DISABLED')
})

t.test('TRUSTED_USER_HEADER takes the user from the gateway header', async (t) => {
  const { config } = await testEnv(t, { TRUSTED_USER_HEADER: 'x-user-id' })
  const { url } = await startApp(t, config)
  const id = await createCampaign(url, { name: 'gw', stock: 5 })
  const r = await http(`${url}/v1/campaigns/${id}/claims`, { method: 'POST', headers: { 'x-user-id': 'gw-user' } })
  t.equal(r.status, 201)
  t.equal(r.body.userId, 'gw-user')
  const dup = await http(`${url}/v1/campaigns/${id}/claims`, { method: 'POST', headers: { 'x-user-id': 'gw-user' } })
  t.equal(dup.status, 409)
  const none = await http(`${url}/v1/campaigns/${id}/claims`,
    { method: 'POST', headers: { authorization: `Bearer ${signJwt({ sub: 'x' }, { secret: JWT_SECRET })}` } })
  t.equal(none.status, 401, 'a JWT is not used when the trusted header is configured')
})

t.test('per-user rate limit answers 429 RATE_LIMITED with Retry-After and consumes nothing', async (t) => {
  const { config, redis } = await testEnv(t, { RATE_LIMIT_USER_MAX: '3', RATE_LIMIT_USER_WINDOW_MS: '60000' })
  const { url } = await startApp(t, config)
  const keys = createKeys(config.KEY_PREFIX, config.STREAM_PARTITIONS)
  const id = await createCampaign(url, { name: 'rl', stock: 100, perUserLimit: 10 })
  const results = await Promise.all(Array.from({ length: 8 }, () => claim(url, id, 'spammer')))
  t.equal(results.filter((r) => r.status === 201).length, 3)
  const limited = results.filter((r) => r.status === 429)
  t.equal(limited.length, 5)
  t.ok(limited.every((r) => r.body.code === 'RATE_LIMITED' && Number(r.headers.get('retry-after')) > 0))
  t.equal(await redis.hget(keys.campaign(id), 'issued'), '3')
  t.equal((await claim(url, id, 'someone-else')).status, 201, 'other users are not limited')
})

t.test('per-IP limit is independent of the user and honours TRUST_PROXY', async (t) => {
  const { config } = await testEnv(t, { RATE_LIMIT_IP_MAX: '4', RATE_LIMIT_IP_WINDOW_MS: '60000' })
  const { url } = await startApp(t, config)
  const id = await createCampaign(url, { name: 'ip', stock: 100 })
  // TRUST_PROXY is off: a forged X-Forwarded-For must not buy a fresh budget.
  const results = await Promise.all(Array.from({ length: 8 },
    (_, i) => claim(url, id, `ip-user-${i}`, { 'x-forwarded-for': `10.0.0.${i}` })))
  t.equal(results.filter((r) => r.status === 201).length, 4)
  t.equal(results.filter((r) => r.status === 429).length, 4)
})

t.test('user ids as IdPs issue them (emails, pipes, unicode) work', async (t) => {
  const { config } = await testEnv(t)
  const { url } = await startApp(t, config)
  const id = await createCampaign(url, { name: 'ids', stock: 10 })
  for (const sub of ['a+b@example.com', 'auth0|5f1c', '김철수', 'user:with:colons,and,commas']) {
    const r = await claim(url, id, sub)
    t.equal(r.status, 201, sub)
    t.equal(r.body.userId, sub)
    t.equal((await claim(url, id, sub)).status, 409, `${sub} again`)
    const me = await http(`${url}/v1/campaigns/${id}/claims/me`, { token: userToken(sub) })
    t.equal(me.body.claims.length, 1)
  }
})
