import t from 'tap'
import { createKeys } from '../src/redis/keys.js'
import { testEnv, startApp, createCampaign, http, claim, userToken, countBy, one } from './helper.js'
import { batchLines, claimMany, fetchJson, rowCount, startedWorker, streamState, waitUntil } from './worker-helper.js'
import { stopProcess } from './process.js'

t.test('5,000 claims through HTTP, two workers: every claim persisted exactly once', async (t) => {
  const { config, env, redis, sql } = await testEnv(t, { RATE_LIMIT_IP_MAX: '0', RATE_LIMIT_USER_MAX: '0' })
  const { url } = await startApp(t, config)
  // Two campaigns land in two partitions, so the workers read more than one stream.
  const a = await createCampaign(url, { name: 'a', stock: 3000 })
  const b = await createCampaign(url, { name: 'b', stock: 2000 })
  const keys = createKeys(config.KEY_PREFIX, config.STREAM_PARTITIONS)
  t.not(keys.streamOf(a), keys.streamOf(b))

  const w1 = await startedWorker(t, env, 'w1', { WORKER_COUNT: '100', WORKER_METRICS_PORT: '0' })
  const w2 = await startedWorker(t, env, 'w2', { WORKER_COUNT: '100' })

  const users = Array.from({ length: 5000 }, (_, i) => `user-${i}`)
  const [ra, rb] = await Promise.all([claimMany(url, a, users.slice(0, 3000)), claimMany(url, b, users.slice(3000))])
  t.same(ra, { 201: 3000 })
  t.same(rb, { 201: 2000 })

  await waitUntil('5,000 rows', async () => (await rowCount(sql)) === 5000)
  await waitUntil('streams drained', async () => {
    const s = await streamState(redis, config)
    return s.length === 0 && s.pending === 0
  })
  for (const [id, stock] of [[a, 3000], [b, 2000]] as const) {
    const [r] = await sql`SELECT count(*)::int AS n, count(DISTINCT sequence)::int AS seqs, min(sequence) AS lo, max(sequence) AS hi,
      count(DISTINCT user_id)::int AS users FROM claims WHERE campaign_id = ${id}`
    t.same({ ...r }, { n: stock, seqs: stock, lo: 1, hi: stock, users: stock }, `campaign ${id}: each sequence once`)
  }
  const { n: failed } = one(await sql`SELECT count(*)::int AS n FROM failed_claims`)
  t.equal(failed, 0)
  await batchLines([w1, w2], (lines) => lines.reduce((sum, l) => sum + Number(l.inserted), 0) >= 5000)
  const moved = [w1, w2].map((w) => w.logs.filter((l) => l.msg === 'batch persisted').reduce((sum,
    l) => sum + Number(l.inserted), 0))
  t.equal(moved[0]! + moved[1]!, 5000, 'the workers inserted 5,000 rows between them')

  // The API reports what the worker did.
  const adminView = await http(`${url}/admin/campaigns/${a}`, { admin: true })
  t.equal(adminView.status, 200)
  t.match(adminView.body, { issued: 3000, persisted: 3000, pending: 0 })
  const me = await http(`${url}/v1/campaigns/${a}/claims/me`, { token: userToken('user-7') })
  t.equal(me.status, 200)
  t.equal(me.body.claims.length, 1)
  t.equal(me.body.claims[0].status, 'persisted')

  // The worker's own probes and metrics.
  const port = (await w1.waitForLog((l) => l.msg === 'worker metrics listening')).port
  const base = `http://127.0.0.1:${port}`
  t.equal((await fetchJson(`${base}/healthz`)).status, 200)
  const ready = await fetchJson(`${base}/readyz`)
  t.same([ready.status, ready.body], [200, { status: 'ready', redis: true, postgres: true }])
  const metrics = await fetchJson(`${base}/metrics`)
  t.equal(metrics.status, 200)
  t.match(metrics.text, new RegExp(`^fcfs_worker_claims_persisted_total ${moved[0]}$`, 'm'))
  t.match(metrics.text, /^fcfs_worker_batch_size_count \d+$/m)
  t.match(metrics.text, /^fcfs_worker_insert_seconds_bucket/m)
  t.match(metrics.text, /^fcfs_worker_failed_total 0$/m)
  // Each worker exports its own consumer's pending entries (sums over workers are right); the stream
  // backlog is the API's to export.
  t.match(metrics.text, new RegExp(`^fcfs_stream_pending\\{stream="${keys.streamOf(a).replace(/[{}]/g, '\\$&')}",group="persisters",consumer="w1"\\} 0$`, 'm'))
  t.notMatch(metrics.text, /^fcfs_stream_backlog/m)
  t.match(metrics.text, /^fcfs_failed_claims 0$/m)
  t.match(metrics.text, /^process_cpu_user_seconds_total /m)

  // The same entry delivered again (replayed by hand, twice, so one copy may share a batch): still one row.
  const [row] = await sql`SELECT claim_id, campaign_id, user_id, sequence, (extract(epoch from claimed_at) * 1000)::bigint AS at
    FROM claims WHERE campaign_id = ${a} AND sequence = 42`
  const fields = ['claimId', row!.claim_id, 'campaignId', String(row!.campaign_id), 'userId', row!.user_id, 'sequence',
    String(row!.sequence), 'claimedAt', String(row!.at)]
  await redis.pipeline().xadd(keys.streamOf(a), '*', ...fields).xadd(keys.streamOf(a), '*', ...fields).exec()
  await waitUntil('replays acked', async () => {
    const s = await streamState(redis, config)
    return s.length === 0 && s.pending === 0 && [w1,
      w2].some((w) => w.logs.some((l) => l.msg === 'batch persisted' && l.duplicates !== 0))
  })
  t.equal(await rowCount(sql), 5000, 'replayed entries added no row')
  const { n: failedAfterReplay } = one(await sql`SELECT count(*)::int AS n FROM failed_claims`)
  t.equal(failedAfterReplay, 0, 'a duplicate is not a failure')

  // Redis lost the group (as after a restart without persistence): the workers recreate it from id 0.
  await redis.xgroup('DESTROY', keys.streamOf(b), 'persisters')
  t.equal((await http(`${url}/admin/campaigns/${b}/stock`, { method: 'POST', admin: true, body: { add: 10 } })).status,
    200)
  t.same(await claimMany(url, b, Array.from({ length: 10 }, (_, i) => `late-${i}`), 5), { 201: 10 })
  await waitUntil('claims after NOGROUP persisted', async () => (await rowCount(sql, b)) === 2010)
  t.ok([w1, w2].some((w) => w.logs.some((l) => /consumer group missing/.test(l.msg))), 'a worker saw NOGROUP')

  // SIGTERM: both exit 0.
  const [e1, e2] = await Promise.all([stopProcess(w1), stopProcess(w2)])
  t.same(e1, { code: 0, signal: null })
  t.same(e2, { code: 0, signal: null })
  const final = await streamState(redis, config)
  t.same([final.length, final.pending], [0, 0])
  t.same(countBy([...w1.logs, ...w2.logs].filter((l) => l.msg === 'worker stopped'), (l) => String(l.consumer)),
    { w1: 1, w2: 1 })
})

t.test('GET /admin/campaigns/:id counts issued claims the worker has not written yet as pending', async (t) => {
  const { config } = await testEnv(t, { RATE_LIMIT_IP_MAX: '0' })
  const { url } = await startApp(t, config)
  const id = await createCampaign(url, { name: 'p', stock: 5 })
  for (const u of ['a', 'b', 'c']) t.equal((await claim(url, id, u)).status, 201)
  const view = await http(`${url}/admin/campaigns/${id}`, { admin: true })
  t.match(view.body, { issued: 3, persisted: 0, pending: 3, remaining: 2 })
  const me = await http(`${url}/v1/campaigns/${id}/claims/me`, { token: userToken('a') })
  t.equal(me.body.claims[0].status, 'pending')
})
