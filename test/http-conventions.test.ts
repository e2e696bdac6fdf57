import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { testEnv, startApp, createCampaign, http, userToken, freePort, waitForOutput, ROOT } from './helper.js'
import { createKeys } from '../src/redis/keys.js'
import { loadConfig } from '../src/config.js'
import { entryArgs } from './process.js'

const SHOP = 'https://shop.example'

t.test('415 for every non-JSON media type, nothing written', async (t) => {
  const { config, redis } = await testEnv(t)
  const { url } = await startApp(t, config)
  const keys = createKeys(config.KEY_PREFIX, config.STREAM_PARTITIONS)
  const id = await createCampaign(url, { name: 'media', stock: 5 })
  const before = await redis.hgetall(keys.campaign(id))
  for (const type of ['text/plain', 'text/plain; charset=utf-8', 'application/xml', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/octet-stream', 'text/html']) {
    const claim = await http(`${url}/v1/campaigns/${id}/claims`, { method: 'POST', token: userToken('u'), body: '{}', headers: { 'content-type': type } })
    t.equal(claim.status, 415, `claim with ${type}`)
    t.equal(claim.body.code, 'UNSUPPORTED_MEDIA_TYPE', `claim with ${type}: code`)
    const admin = await http(`${url}/admin/campaigns`, { method: 'POST', admin: true, body: '{"name":"x","stock":1}', headers: { 'content-type': type } })
    t.equal(admin.status, 415, `admin create with ${type}`)
  }
  t.same(await redis.hgetall(keys.campaign(id)), before, 'no claim issued')
  const ok = await http(`${url}/v1/campaigns/${id}/claims`, { method: 'POST', token: userToken('u'), body: '{}', headers: { 'content-type': 'application/json; charset=utf-8' } })
  t.equal(ok.status, 201, 'JSON with a charset is JSON')
})

t.test('405 with Allow for a known path and the wrong method; 404 for an unknown path', async (t) => {
  const { config } = await testEnv(t)
  const { url } = await startApp(t, config)
  const cases: [string, string, string][] = [
    ['DELETE', '/v1/campaigns/1/claims', 'POST'],
    ['GET', '/v1/campaigns/1/claims', 'POST'],
    ['POST', '/v1/campaigns/1', 'GET, HEAD'],
    ['PUT', '/admin/campaigns', 'GET, HEAD, POST'],
    ['DELETE', '/admin/campaigns/7', 'GET, HEAD'],
    ['POST', '/healthz', 'GET, HEAD'],
    ['OPTIONS', '/v1/campaigns/1/claims', 'POST'],
  ]
  for (const [method, p, allow] of cases) {
    const r = await http(`${url}${p}`, { method, ...(method === 'GET' ? { token: userToken('u') } : {}) })
    t.equal(r.status, 405, `${method} ${p}`)
    t.equal(r.headers.get('allow'), allow, `${method} ${p}: Allow`)
    t.equal(r.body.code, 'METHOD_NOT_ALLOWED')
    t.same(Object.keys(r.body).sort(), ['code', 'error', 'message', 'statusCode'])
  }
  const missing = await http(`${url}/v1/nothing-here`, { method: 'DELETE' })
  t.equal(missing.status, 404)
  t.equal(missing.body.code, 'NOT_FOUND')
  t.equal(missing.headers.get('allow'), null)
})

t.test('CORS: off by default', async (t) => {
  const { config } = await testEnv(t)
  const { url } = await startApp(t, config)
  const id = await createCampaign(url, { name: 'no-cors', stock: 5 })
  const get = await http(`${url}/v1/campaigns/${id}`, { headers: { origin: SHOP } })
  t.equal(get.status, 200)
  t.equal(get.headers.get('access-control-allow-origin'), null, 'no CORS header without CORS_ORIGINS')
  const pre = await http(`${url}/v1/campaigns/${id}/claims`, { method: 'OPTIONS', headers: { origin: SHOP, 'access-control-request-method': 'POST' } })
  t.not(pre.status, 204, 'no preflight answer')
  t.equal(pre.headers.get('access-control-allow-origin'), null)
})

t.test('CORS: CORS_ORIGINS opens the claim route and the public reads to those origins only', async (t) => {
  const { config } = await testEnv(t, { CORS_ORIGINS: `${SHOP}, http://localhost:5173` })
  const { url } = await startApp(t, config)
  const id = await createCampaign(url, { name: 'cors', stock: 5 })

  const pre = await http(`${url}/v1/campaigns/${id}/claims`, {
    method: 'OPTIONS', headers: { origin: SHOP, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, idempotency-key' },
  })
  t.equal(pre.status, 204, 'preflight answered')
  t.equal(pre.headers.get('access-control-allow-origin'), SHOP)
  t.match(pre.headers.get('access-control-allow-methods'), /POST/)
  t.match(pre.headers.get('access-control-allow-headers'), /authorization/)
  t.match(pre.headers.get('access-control-allow-headers'), /idempotency-key/)

  const claim = await http(`${url}/v1/campaigns/${id}/claims`, { method: 'POST', token: userToken('u'), headers: { origin: 'http://localhost:5173' } })
  t.equal(claim.status, 201)
  t.equal(claim.headers.get('access-control-allow-origin'), 'http://localhost:5173')
  t.match(claim.headers.get('access-control-expose-headers'), /retry-after/, 'a browser may read Retry-After')
  const read = await http(`${url}/v1/campaigns/${id}`, { headers: { origin: SHOP } })
  t.equal(read.headers.get('access-control-allow-origin'), SHOP, 'public read')
  const mine = await http(`${url}/v1/campaigns/${id}/claims/me`, { token: userToken('u'), headers: { origin: SHOP } })
  t.equal(mine.headers.get('access-control-allow-origin'), SHOP, "the user's own claims")

  const foreign = await http(`${url}/v1/campaigns/${id}`, { headers: { origin: 'https://evil.example' } })
  t.equal(foreign.headers.get('access-control-allow-origin'), null, 'an origin not listed gets no grant')
  const adminPre = await http(`${url}/admin/campaigns`, { method: 'OPTIONS', headers: { origin: SHOP, 'access-control-request-method': 'POST' } })
  t.equal(adminPre.headers.get('access-control-allow-origin'), null, 'admin routes are not opened')
  const admin = await http(`${url}/admin/campaigns/${id}`, { admin: true, headers: { origin: SHOP } })
  t.equal(admin.status, 200)
  t.equal(admin.headers.get('access-control-allow-origin'), null)
  const metrics = await http(`${url}/healthz`, { headers: { origin: SHOP } })
  t.equal(metrics.headers.get('access-control-allow-origin'), null, 'ops routes are not opened')
})

t.test('CORS_ORIGINS must be exact origins', async (t) => {
  for (const bad of ['*', 'shop.example', 'https://shop.example/path', 'https://a.example,,ftp://b']) {
    t.throws(() => loadConfig({ JWT_SECRET: 'x'.repeat(20), CORS_ORIGINS: bad }), /CORS_ORIGINS/, JSON.stringify(bad))
  }
})

t.test('the server starts without a deprecation warning (FSTDEP023)', async (t) => {
  const { env } = await testEnv(t)
  const port = await freePort()
  const child = spawn(process.execPath, entryArgs('src/server'), {
    cwd: ROOT, env: { ...process.env, ...env, PORT: String(port), LOG_LEVEL: 'info', NODE_ENV: 'production' }, stdio: ['ignore', 'pipe', 'pipe'],
  })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  const out = await waitForOutput(child, /Server listening/, 120_000)
  await http(`http://127.0.0.1:${port}/healthz`)
  child.kill('SIGTERM')
  await once(child, 'exit')
  t.notMatch(out, /FSTDEP|DeprecationWarning/, 'no deprecation warning on start')
})
