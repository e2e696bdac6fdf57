import t from 'tap'
import { testEnv, spawnServer, freePort, createCampaign, claim, countBy } from './helper.js'
import { createKeys } from '../src/redis/keys.js'

t.test('two server processes sharing Redis: 2,000 users, stock 500', async (t) => {
  const { config, env, redis } = await testEnv(t, { RATE_LIMIT_IP_MAX: '0' })
  const [a, b] = await Promise.all([
    freePort().then((p) => spawnServer(t, env, p)),
    freePort().then((p) => spawnServer(t, env, p)),
  ])
  const keys = createKeys(config.KEY_PREFIX, config.STREAM_PARTITIONS)
  const id = await createCampaign(a.url, { name: 'two-procs', stock: 500 })

  // Each user hits one server; every 10th user double-clicks on both servers at once.
  const requests: Promise<{ user: string; res: Awaited<ReturnType<typeof claim>> }>[] = []
  for (let i = 0; i < 2000; i++) {
    const user = `mp-${i}`
    requests.push(claim(i % 2 ? a.url : b.url, id, user).then((res) => ({ user, res })))
    if (i % 10 === 0) requests.push(claim(i % 2 ? b.url : a.url, id, user).then((res) => ({ user, res })))
  }
  const results = await Promise.all(requests)
  const won = results.filter((r) => r.res.status === 201)
  t.equal(won.length, 500, 'exactly the stock is issued')
  t.equal(new Set(won.map((r) => r.user)).size, 500, 'no user holds two')
  t.same([...new Set(won.map((r) => r.res.body.sequence))].sort((x, y) => x - y),
    Array.from({ length: 500 }, (_, i) => i + 1))
  const statuses = countBy(results, (r) => r.res.status)
  t.equal((statuses[410] ?? 0) + (statuses[409] ?? 0), results.length - 500,
    'everyone else got SOLD_OUT or ALREADY_CLAIMED')
  t.equal(await redis.hget(keys.campaign(id), 'issued'), '500')
  t.equal(await redis.xlen(keys.streamOf(id)), 500)
})
