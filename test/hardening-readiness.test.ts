/**
 * API readiness follows what claims need. With PostgreSQL unreachable, claims keep answering 201 and
 * /readyz stays 200 but says "degraded"; the gauge fcfs_backend_up{backend="postgres"} is 0; admin routes
 * answer 503 BACKEND_UNAVAILABLE with Retry-After. Every 503 carries Retry-After.
 */
import t from 'tap'
import { createKeys } from '../src/redis/keys.js'
import { testEnv, startApp, http, createCampaign, claim, freePort } from './helper.js'

const METRICS_TOKEN = 'metrics-token-0123456789'

t.test('PostgreSQL down: claims go on, readiness degraded not failing, admin 503 + Retry-After', async (t) => {
  const { config } = await testEnv(t, { RATE_LIMIT_IP_MAX: '0', METRICS_TOKEN })
  const { url: healthy } = await startApp(t, config)
  const id = await createCampaign(healthy, { name: 'pg-down', stock: 10 })

  const deadPort = await freePort() // nothing listens there
  const { url } = await startApp(t, { ...config, DATABASE_URL: `postgres://postgres@127.0.0.1:${deadPort}/nothing`, READY_TIMEOUT_MS: 300 })
  const ready = await http(`${url}/readyz`)
  t.equal(ready.status, 200, 'ready: claims only need Redis')
  t.equal(ready.body.status, 'ready')
  t.same(ready.body.degraded, ['postgres'])
  t.equal(ready.body.checks.redis, 'ok')
  t.equal(ready.body.checks.eviction, 'ok')
  t.not(ready.body.checks.postgres, 'ok')

  const c = await claim(url, id, 'alice')
  t.equal(c.status, 201, 'claims keep answering')

  const metrics = await http(`${url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })
  t.match(metrics.body, /fcfs_backend_up\{backend="postgres"\} 0/)
  t.match(metrics.body, /fcfs_backend_up\{backend="redis"\} 1/)

  const started = Date.now()
  for (const [method, path, body] of [['POST', '/admin/campaigns', { name: 'x', stock: 1 }], ['GET', `/admin/campaigns/${id}`, undefined],
    ['POST', `/admin/campaigns/${id}/stock`, { add: 1 }]] as const) {
    const r = await http(`${url}${path}`, { method, admin: true, body })
    t.equal(r.status, 503, `${method} ${path}: 503`)
    t.equal(r.body.code, 'BACKEND_UNAVAILABLE')
    t.equal(r.headers.get('retry-after'), '1', 'Retry-After')
  }
  t.ok(Date.now() - started < 15_000, 'admin answers do not hang')

  // The healthy instance (same Redis, working database) is not degraded.
  const ok = await http(`${healthy}/readyz`)
  t.equal(ok.status, 200)
  t.equal(ok.body.degraded, undefined)
  t.match((await http(`${healthy}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })).body, /fcfs_backend_up\{backend="postgres"\} 1/)
})

t.test('every 503 carries Retry-After (campaign unavailable, admin disabled, metrics disabled)', async (t) => {
  const { config, redis } = await testEnv(t, { RATE_LIMIT_IP_MAX: '0' })
  const { url } = await startApp(t, config)
  const id = await createCampaign(url, { name: 'gone', stock: 5 })
  await redis.del(createKeys(config.KEY_PREFIX, config.STREAM_PARTITIONS).campaign(id))
  const gone = await claim(url, id, 'bob')
  t.equal(gone.status, 503)
  t.equal(gone.body.code, 'CAMPAIGN_UNAVAILABLE')
  t.ok(gone.headers.get('retry-after'), 'CAMPAIGN_UNAVAILABLE has Retry-After')
  const metrics = await http(`${url}/metrics`)
  t.equal(metrics.status, 503)
  t.ok(metrics.headers.get('retry-after'), 'METRICS_DISABLED has Retry-After')
  const { url: noAdmin } = await startApp(t, { ...config, ADMIN_TOKEN: undefined })
  const disabled = await http(`${noAdmin}/admin/campaigns`, { method: 'POST', body: { name: 'x', stock: 1 } })
  t.equal(disabled.status, 503)
  t.ok(disabled.headers.get('retry-after'), 'ADMIN_DISABLED has Retry-After')
})
