/**
 * Admin writes are safe to retry. With Idempotency-Key, a retry gets the first answer and never writes
 * twice, also when concurrent; when Redis runs out of memory after the PostgreSQL write committed, the
 * answer is 503 naming the campaign (never 500), and the retry with the same key mirrors it and answers.
 */
import t from 'tap'
import { testEnv, startApp, http } from './helper.js'
import { startPrivateRedis } from './private-redis.js'
import { createKeys } from '../src/redis/keys.js'

t.test('create and add stock with Idempotency-Key across a Redis OOM', async (t) => {
  const r = await startPrivateRedis(t)
  const { config, sql } = await testEnv(t)
  const { url } = await startApp(t, { ...config, REDIS_URL: r.url })
  const keys = createKeys(config.KEY_PREFIX, config.STREAM_PARTITIONS)
  const post = (path: string, body: unknown, key?: string) =>
    http(`${url}${path}`, { method: 'POST', admin: true, body, headers: key ? { 'idempotency-key': key } : {} })
  const campaignsNamed = async (name: string) => (await sql`select count(*)::int as n from campaigns where name = ${name}`)[0]!.n

  // Redis full: the row commits, the mirror fails -> 503 with the campaign id, not 500.
  await r.admin.config('SET', 'maxmemory', '1')
  const first = await post('/admin/campaigns', { name: 'oom', stock: 10 }, 'create-1')
  t.equal(first.status, 503, JSON.stringify(first.body))
  t.equal(first.body.code, 'BACKEND_UNAVAILABLE')
  t.ok(first.headers.get('retry-after'), 'Retry-After')
  t.match(first.body.campaignId, /^\d+$/, 'names the campaign')
  t.match(first.body.message, /committed in PostgreSQL.*same Idempotency-Key.*reconcile -- --campaign \d+ --fix/)
  const id = first.body.campaignId as string
  t.equal(await campaignsNamed('oom'), 1, 'the row is committed')

  // Still full: the retry writes nothing and answers the same 503.
  const again = await post('/admin/campaigns', { name: 'oom', stock: 10 }, 'create-1')
  t.equal(again.status, 503)
  t.equal(again.body.campaignId, id)
  t.equal(await campaignsNamed('oom'), 1, 'no second row')

  // Redis has room again: the retry mirrors and answers 201 with the same campaign.
  await r.admin.config('SET', 'maxmemory', '0')
  const ok = await post('/admin/campaigns', { name: 'oom', stock: 10 }, 'create-1')
  t.equal(ok.status, 201)
  t.equal(ok.body.id, id)
  t.equal(ok.headers.get('idempotent-replayed'), 'true')
  t.equal(await r.admin.hget(keys.campaign(id), 'stock'), '10', 'mirrored')
  t.equal(await campaignsNamed('oom'), 1)
  const replay = await post('/admin/campaigns', { name: 'oom', stock: 10 }, 'create-1')
  t.same(replay.body, ok.body, 'the same answer on every retry')

  // The same key for another request: refused.
  const reused = await post('/admin/campaigns', { name: 'other', stock: 3 }, 'create-1')
  t.equal(reused.status, 422)
  t.equal(reused.body.code, 'IDEMPOTENCY_KEY_REUSED')

  // Stock: committed, mirror fails (OOM) -> 503; retries never add twice.
  await r.admin.config('SET', 'maxmemory', '1')
  const add = await post(`/admin/campaigns/${id}/stock`, { add: 5 }, 'stock-1')
  t.equal(add.status, 503, JSON.stringify(add.body))
  t.equal(add.body.campaignId, id)
  t.equal((await sql`select stock from campaigns where id = ${id}`)[0]!.stock, 15, 'the addition committed once')
  t.equal((await post(`/admin/campaigns/${id}/stock`, { add: 5 }, 'stock-1')).status, 503)
  await r.admin.config('SET', 'maxmemory', '0')
  const added = await post(`/admin/campaigns/${id}/stock`, { add: 5 }, 'stock-1')
  t.equal(added.status, 200)
  t.same(added.body, { stock: 15, remaining: 15 })
  t.same((await post(`/admin/campaigns/${id}/stock`, { add: 5 }, 'stock-1')).body, { stock: 15, remaining: 15 })
  t.equal((await sql`select stock from campaigns where id = ${id}`)[0]!.stock, 15, 'still added once')
  t.equal(await r.admin.hget(keys.campaign(id), 'stock'), '15')

  // Without a key, a committed write whose mirror fails is still a 503 naming the campaign.
  await r.admin.config('SET', 'maxmemory', '1')
  const bare = await post('/admin/campaigns', { name: 'bare', stock: 1 })
  t.equal(bare.status, 503)
  t.match(bare.body.campaignId, /^\d+$/)
  t.match(bare.body.message, /do not repeat.*reconcile/)
  await r.admin.config('SET', 'maxmemory', '0')
})

t.test('concurrent requests with one key: one campaign, one stock addition, one answer', async (t) => {
  const { config, sql } = await testEnv(t)
  const { url } = await startApp(t, config)
  const post = (path: string, body: unknown, key: string) =>
    http(`${url}${path}`, { method: 'POST', admin: true, body, headers: { 'idempotency-key': key } })
  const creates = await Promise.all(Array.from({ length: 20 },
    () => post('/admin/campaigns', { name: 'race', stock: 7 }, 'race-create')))
  t.same([...new Set(creates.map((r) => r.status))], [201],
    JSON.stringify(creates.filter((r) => r.status !== 201).map((r) => r.body)))
  const ids = new Set(creates.map((r) => r.body.id))
  t.equal(ids.size, 1, 'one campaign id in every answer')
  t.equal((await sql`select count(*)::int as n from campaigns where name = 'race'`)[0]!.n, 1, 'one row')
  const id = [...ids][0] as string
  const adds = await Promise.all(Array.from({ length: 20 },
    () => post(`/admin/campaigns/${id}/stock`, { add: 3 }, 'race-stock')))
  t.same([...new Set(adds.map((r) => r.status))], [200])
  t.same([...new Set(adds.map((r) => r.body.stock))], [10])
  t.equal((await sql`select stock from campaigns where id = ${id}`)[0]!.stock, 10, 'stock added once')
})
