import t from 'tap'
import { testEnv, spawnServer, startApp, freePort, createCampaign, claim, http } from './helper.js'
import { createKeys } from '../src/redis/keys.js'

t.test('a stock addition on one server reaches the sold-out cache of another at once', async (t) => {
  // A long expiry, so only the event can be what clears the cache.
  const { env, redis, config } = await testEnv(t, { RATE_LIMIT_IP_MAX: '0', SOLD_OUT_CACHE_MS: '600000' })
  const keys = createKeys(config.KEY_PREFIX, config.STREAM_PARTITIONS)
  const [a, b] = await Promise.all([spawnServer(t, env, await freePort()), spawnServer(t, env, await freePort())])
  const id = await createCampaign(a.url, { name: 'restock-across', stock: 1 })
  const early = await claim(b.url, id, 'keyed', { 'idempotency-key': 'k1' })
  t.equal(early.status, 201)
  t.equal((await claim(b.url, id, 'late-1')).status, 410, 'B learns from Redis that it is sold out')

  // Take the live state away: Redis would now answer 503, so a 410 can only come from B's memory.
  const saved = await redis.hgetall(keys.campaign(id))
  await redis.del(keys.campaign(id))
  const cached = await claim(b.url, id, 'late-2')
  t.equal(cached.status, 410, 'B answers from its cache')
  t.equal(cached.body.code, 'SOLD_OUT')
  t.equal((await claim(a.url, id, 'late-3')).status, 503, 'A never saw SOLD_OUT, so it asks Redis')
  const replayed = await claim(b.url, id, 'keyed', { 'idempotency-key': 'k1' })
  t.equal(replayed.status, 201, 'a keyed request (a possible replay) bypasses the cache and replays its 201')
  t.same(replayed.body, early.body)
  await redis.hset(keys.campaign(id), saved)

  const add = await http(`${a.url}/admin/campaigns/${id}/stock`, { method: 'POST', admin: true, body: { add: 2 } })
  t.equal(add.status, 200)
  const next = await claim(b.url, id, 'after-restock-1')
  t.equal(next.status, 201, 'the very next claim on B is served by Redis')
  t.equal(next.body.sequence, 2)
  t.equal((await claim(b.url, id, 'after-restock-2')).body.sequence, 3)
  t.equal((await claim(b.url, id, 'after-restock-3')).status, 410)
  t.equal(await redis.hget(keys.campaign(id), 'issued'), '3', 'exactly the stock was issued')
  t.equal(await redis.hlen(keys.users(id)), 3)
  t.equal((await redis.xrange(keys.streamOf(id), '-', '+')).length, 3)
})

t.test('a lost event subscription empties the cache until it is back', async (t) => {
  const { config, redis } = await testEnv(t, { RATE_LIMIT_IP_MAX: '0' })
  const { app, url } = await startApp(t, config)
  const id = await createCampaign(url, { name: 'reconnect', stock: 1 })
  await claim(url, id, 'first')
  t.equal((await claim(url, id, 'second')).status, 410)
  t.ok(app.soldOut.has(id), 'remembered')
  const list = String(await redis.client('LIST'))
  const subs = list.split('\n').filter((l) => l.includes(`name=fcfs-api-events:${config.KEY_PREFIX} `))
  t.equal(subs.length, 1, 'one subscriber connection')
  await redis.client('KILL', 'ID', /\bid=(\d+)/.exec(subs[0]!)![1]!)
  const until = Date.now() + 5_000
  while (app.soldOut.has(id) && Date.now() < until) await new Promise((r) => setTimeout(r, 5))
  t.notOk(app.soldOut.has(id), 'forgotten when the connection drops')
  while (!app.soldOut.has(id) && Date.now() < until) {
    t.equal((await claim(url, id, 'meanwhile')).status, 410)
    await new Promise((r) => setTimeout(r, 20))
  }
  t.ok(app.soldOut.has(id), 'remembered again once resubscribed')
})
