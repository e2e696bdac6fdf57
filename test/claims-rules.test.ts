import t from 'tap'
import { testEnv, startApp, createCampaign, claim, http, userToken, deleteKeys, freePort } from './helper.js'
import { createKeys } from '../src/redis/keys.js'
import { rawClaim } from '../src/redis/stream-entry.js'

t.test('claim rules through HTTP', async (t) => {
  const { config, redis } = await testEnv(t, { RATE_LIMIT_IP_MAX: '0' })
  const { url } = await startApp(t, config)
  const keys = createKeys(config.KEY_PREFIX, config.STREAM_PARTITIONS)
  const state = async (id: string) => ({
    issued: await redis.hget(keys.campaign(id), 'issued'),
    users: await redis.hlen(keys.users(id)),
    stream: (await redis.xrange(keys.streamOf(id), '-',
      '+')).filter(([, f]) => rawClaim(f)?.campaignId === id).length,
  })

  await t.test('Idempotency-Key replays the first answer and consumes nothing', async (t) => {
    const id = await createCampaign(url, { name: 'idem', stock: 10, perUserLimit: 2 })
    const h = { 'idempotency-key': 'order-42' }
    const first = await claim(url, id, 'ann', h)
    t.equal(first.status, 201)
    t.notOk(first.headers.get('idempotent-replayed'))
    const again = await Promise.all([claim(url, id, 'ann', h), claim(url, id, 'ann', h)])
    for (const r of again) {
      t.equal(r.status, 201)
      t.same(r.body, first.body, 'same body')
      t.equal(r.headers.get('idempotent-replayed'), 'true')
    }
    t.same(await state(id), { issued: '1', users: 1, stream: 1 }, 'nothing consumed by the replays')
    const other = await claim(url, id, 'ann', { 'idempotency-key': 'order-43' })
    t.equal(other.body.sequence, 2, 'a new key is a new claim')
    const otherUser = await claim(url, id, 'bob', h)
    t.equal(otherUser.body.sequence, 3, 'keys are per user')
    const bad = await claim(url, id, 'ann', { 'idempotency-key': 'no spaces allowed' })
    t.equal(bad.status, 400)
    t.equal(bad.body.code, 'VALIDATION')
    t.same(await state(id), { issued: '3', users: 2, stream: 3 })
  })

  await t.test('stock added after sold out continues from old stock + 1', async (t) => {
    const id = await createCampaign(url, { name: 'restock', stock: 2 })
    t.equal((await claim(url, id, 'u1')).body.sequence, 1)
    t.equal((await claim(url, id, 'u2')).body.sequence, 2)
    const sold = await claim(url, id, 'u3')
    t.equal(sold.status, 410)
    t.equal(sold.body.code, 'SOLD_OUT')
    t.equal((await http(`${url}/v1/campaigns/${id}`)).body.state, 'sold_out')
    const add = await http(`${url}/admin/campaigns/${id}/stock`, { method: 'POST', admin: true, body: { add: 3 } })
    t.equal(add.status, 200)
    t.same(add.body, { stock: 5, remaining: 3 })
    const more = await Promise.all(['u3', 'u4', 'u5', 'u6'].map((u) => claim(url, id, u)))
    t.same(more.map((r) => r.status).sort(), [201, 201, 201, 410])
    t.same(more.filter((r) => r.status === 201).map((r) => r.body.sequence).sort(), [3, 4, 5])
    const admin = await http(`${url}/admin/campaigns/${id}`, { admin: true })
    t.equal(admin.status, 200)
    t.match(admin.body, { id, name: 'restock', stock: 5, perUserLimit: 1, issued: 5, remaining: 0 })
  })

  await t.test('before opensAt and after closesAt', async (t) => {
    const opensAt = new Date(Date.now() + 3_600_000).toISOString()
    const future = await createCampaign(url, { name: 'later', stock: 5, opensAt })
    const r = await claim(url, future, 'early')
    t.equal(r.status, 403)
    t.equal(r.body.code, 'NOT_OPEN')
    t.equal(r.body.opensAt, opensAt)
    t.equal((await http(`${url}/v1/campaigns/${future}`)).body.state, 'scheduled')
    t.same(await state(future), { issued: '0', users: 0, stream: 0 })

    const past = await createCampaign(url, {
      name: 'over', stock: 5, opensAt: new Date(Date.now() - 7_200_000).toISOString(), closesAt: new Date(Date.now() - 3_600_000).toISOString(),
    })
    const c = await claim(url, past, 'late')
    t.equal(c.status, 403)
    t.equal(c.body.code, 'CLOSED')
    t.equal((await http(`${url}/v1/campaigns/${past}`)).body.state, 'closed')
    t.same(await state(past), { issued: '0', users: 0, stream: 0 })

    const open = await createCampaign(url,
      { name: 'now', stock: 5, closesAt: new Date(Date.now() + 3_600_000).toISOString() })
    t.equal((await claim(url, open, 'ontime')).status, 201)
    const pub = await http(`${url}/v1/campaigns/${open}`)
    t.match(pub.body, { id: open, name: 'now', remaining: 4, opensAt: null, state: 'open' })
  })

  await t.test('unknown campaign and bad ids', async (t) => {
    const r = await claim(url, '999999', 'x')
    t.equal(r.status, 404)
    t.equal(r.body.code, 'CAMPAIGN_NOT_FOUND')
    t.equal((await http(`${url}/v1/campaigns/999999`)).body.code, 'CAMPAIGN_NOT_FOUND')
    t.equal((await http(`${url}/admin/campaigns/999999`, { admin: true })).status, 404)
    for (const bad of ['abc', '0', '-1', '1.5', '12345678901234567890123']) {
      const b = await claim(url, bad, 'x')
      t.equal(b.status, 400, `id ${bad}`)
      t.equal(b.body.code, 'VALIDATION')
    }
    t.equal((await redis.keys(`${config.KEY_PREFIX}:{*}:*999999*`)).length, 0,
      'no campaign key created for the unknown campaign')
  })

  await t.test('missing live state in Redis: 503 and no counter created', async (t) => {
    const id = await createCampaign(url, { name: 'lost', stock: 5 })
    t.equal((await claim(url, id, 'first')).status, 201)
    await deleteKeys(redis, `${keys.campaign(id)}*`)
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => claim(url, id, `after-${i}`)))
    t.ok(results.every((r) => r.status === 503 && r.body.code === 'CAMPAIGN_UNAVAILABLE'))
    t.equal(await redis.exists(keys.campaign(id), keys.users(id)), 0, 'nothing rebuilt from zero')
    t.equal((await http(`${url}/v1/campaigns/${id}`)).status, 503)
    t.equal((await http(`${url}/v1/campaigns/${id}/claims/me`, { token: userToken('first') })).status, 503)
    t.equal((await http(`${url}/admin/campaigns/${id}`, { admin: true })).status, 503)
    const add = await http(`${url}/admin/campaigns/${id}/stock`, { method: 'POST', admin: true, body: { add: 1 } })
    t.equal(add.status, 503, 'stock cannot be added to a campaign without live state')
    t.equal(await redis.exists(keys.campaign(id)), 0)
  })

  await t.test('claims/me lists the user\'s claims', async (t) => {
    const id = await createCampaign(url, { name: 'mine', stock: 5, perUserLimit: 2 })
    const a = await claim(url, id, 'me')
    const b = await claim(url, id, 'me')
    const me = await http(`${url}/v1/campaigns/${id}/claims/me`, { token: userToken('me') })
    t.equal(me.status, 200)
    t.same(me.body.claims.map((c: { claimId: string; sequence: number }) => [c.claimId, c.sequence]),
      [[a.body.claimId, 1], [b.body.claimId, 2]])
    t.ok(me.body.claims.every((c: { claimedAt: string; status: string }) => !Number.isNaN(Date.parse(c.claimedAt)) && c.status === 'pending'))
    const none = await http(`${url}/v1/campaigns/${id}/claims/me`, { token: userToken('nobody') })
    t.same(none.body, { claims: [] })
  })
})

t.test('Redis unreachable: 503 BACKEND_UNAVAILABLE, not a 500', async (t) => {
  const { config } = await testEnv(t)
  const port = await freePort()
  const { url } = await startApp(t, { ...config, REDIS_URL: `redis://127.0.0.1:${port}` })
  const r = await claim(url, '1', 'someone')
  t.equal(r.status, 503)
  t.equal(r.body.code, 'BACKEND_UNAVAILABLE')
  t.same(Object.keys(r.body).sort(), ['code', 'error', 'message', 'statusCode'])
})
