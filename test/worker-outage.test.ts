import t from 'tap'
import { testEnv, startApp, createCampaign, one } from './helper.js'
import { claimMany, fetchJson, rowCount, startedWorker, streamState, tcpProxy, waitUntil } from './worker-helper.js'
import { stopProcess } from './process.js'

t.test('Postgres unreachable while claims keep coming: nothing acked early, all rows once it returns', async (t) => {
  const { config, env, redis, sql } = await testEnv(t, { RATE_LIMIT_IP_MAX: '0' })
  const { url } = await startApp(t, config)
  const id = await createCampaign(url, { name: 'o', stock: 500 })

  // The worker reaches Postgres only through a proxy the test can cut and restore on the same port.
  const pg = new URL(config.DATABASE_URL)
  const proxy = await tcpProxy(t, Number(pg.port || 5432))
  const viaProxy = new URL(config.DATABASE_URL)
  viaProxy.port = String(proxy.port)
  // The default reclaim (30 s idle): the batches in hand must persist when PostgreSQL returns, none left
  // pending for a reclaim (a stranded sql.reserve() did that: scripts/patch-postgres.mjs).
  const w = await startedWorker(t, { ...env, DATABASE_URL: viaProxy.toString() }, 'patient',
    { WORKER_COUNT: '50', WORKER_METRICS_PORT: '0' })
  const port = (await w.waitForLog((l) => l.msg === 'worker metrics listening')).port
  const readyz = `http://127.0.0.1:${port}/readyz`

  t.same(await claimMany(url, id, Array.from({ length: 200 }, (_, i) => `before-${i}`)), { 201: 200 })
  await waitUntil('first 200 rows', async () => (await rowCount(sql, id)) === 200)

  await proxy.down()
  t.same(await claimMany(url, id, Array.from({ length: 300 }, (_, i) => `during-${i}`)), { 201: 300 })
  const failuresBefore = w.logs.filter((l) => l.msg === 'persist batch failed, retrying').length
  await waitUntil('the worker retried several times',
    async () => w.logs.filter((l) => l.msg === 'persist batch failed, retrying').length >= failuresBefore + 3)
  t.equal(w.child.exitCode, null, 'still running')
  const during = await streamState(redis, config)
  t.equal(during.length, 300, 'no entry was acked and deleted while Postgres was away')
  t.equal(await rowCount(sql, id), 200)
  const notReady = await fetchJson(readyz)
  t.same([notReady.status, notReady.body], [503, { status: 'unavailable', redis: true, postgres: false }])

  await proxy.up()
  await waitUntil('all 500 rows', async () => (await rowCount(sql, id)) === 500, 20_000)
  t.notOk(w.logs.some((l) => l.msg === 'reclaimed idle entries' && Number(l.entries) > 0), 'nothing waited for a reclaim')
  await waitUntil('stream drained', async () => {
    const s = await streamState(redis, config)
    return s.length === 0 && s.pending === 0
  })
  const [r] = await sql`SELECT count(DISTINCT sequence)::int AS seqs, min(sequence) AS lo, max(sequence) AS hi FROM claims WHERE campaign_id = ${id}`
  t.same({ ...r }, { seqs: 500, lo: 1, hi: 500 })
  const { failed } = one(await sql`SELECT count(*)::int AS failed FROM failed_claims`)
  t.equal(failed, 0)
  await waitUntil('ready again', async () => (await fetchJson(readyz)).status === 200)
  t.same(await stopProcess(w), { code: 0, signal: null })
})

t.test('SIGTERM while Postgres is down: the batch in hand stays pending for others, exit 0', async (t) => {
  const { config, env, redis, sql } = await testEnv(t, { RATE_LIMIT_IP_MAX: '0' })
  const { url } = await startApp(t, config)
  const id = await createCampaign(url, { name: 'q', stock: 50 })
  const pg = new URL(config.DATABASE_URL)
  const proxy = await tcpProxy(t, Number(pg.port || 5432))
  const viaProxy = new URL(config.DATABASE_URL)
  viaProxy.port = String(proxy.port)
  const w = await startedWorker(t, { ...env, DATABASE_URL: viaProxy.toString() }, 'stuck',
    { WORKER_SHUTDOWN_TIMEOUT_MS: '500' })
  await proxy.down()
  t.same(await claimMany(url, id, Array.from({ length: 50 }, (_, i) => `u${i}`)), { 201: 50 })
  await w.waitForLog((l) => l.msg === 'persist batch failed, retrying')
  t.same(await stopProcess(w), { code: 0, signal: null })
  t.ok(w.logs.some((l) => l.msg === 'left the batch in hand pending for another worker'))
  const s = await streamState(redis, config)
  t.equal(s.length, 50, 'nothing acked')
  t.equal(await rowCount(sql, id), 0)
})
