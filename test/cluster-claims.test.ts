/**
 * The API on a real Redis Cluster (3 masters + 3 replicas): every partition, two server processes.
 */
import t from 'tap'
import { createKeys } from '../src/redis/keys.js'
import { keySlot } from '../src/redis/slots.js'
import { rawClaim } from '../src/redis/stream-entry.js'
import { spawnServer, freePort, createCampaign, claim, countBy, http, userToken } from './helper.js'
import { clusterEnv, startCluster } from './cluster-helper.js'

const cluster = await startCluster(t)
// One deployment for the whole file: two API processes, a per-user limit of 3 per window (the race below
// stays under it: 3 attempts per user), a long sold-out cache (only events may clear it).
const { config, env, redis } = await clusterEnv(t, cluster, {
  RATE_LIMIT_IP_MAX: '0', RATE_LIMIT_USER_MAX: '3', RATE_LIMIT_USER_WINDOW_MS: '60000',
  SOLD_OUT_CACHE_MS: '600000', METRICS_TOKEN: 'metrics-token-0123456789',
  // The race asserts correctness, not latency: a slow answer on a loaded CI box must not become a 503.
  REDIS_COMMAND_TIMEOUT_MS: '10000',
})
const keys = createKeys(config.KEY_PREFIX, config.STREAM_PARTITIONS)
const [a, b] = await Promise.all([
  spawnServer(t, env, await freePort(), 90_000),
  spawnServer(t, env, await freePort(), 90_000),
])

t.test('keys: the slot computed here is the cluster\'s, and the 12 partitions spread 4/4/4 over the masters', async (t) => {
  t.equal(config.STREAM_PARTITIONS, 12)
  const node = cluster.direct(cluster.nodes[0]!.port)
  const perMaster = new Map<number, number>()
  const masters = (await cluster.topology()).filter((n) => n.role === 'master')
  for (let p = 0; p < keys.partitions; p++) {
    const id = String(p === 0 ? keys.partitions : p)
    const rl = keys.userRate(id, 'u')
    for (const key of [keys.campaign(id), keys.users(id), keys.stream(p), keys.idempotency(id, 'u', 'k'), rl]) {
      t.equal(await node.cluster('KEYSLOT', key), keys.slotOf(p), `${key} is in partition ${p}'s slot`)
    }
    t.equal(keySlot(keys.stream(p)), await node.cluster('KEYSLOT', keys.stream(p)))
    const owner = masters.find((m) => m.slots.some(([a, b]) => keys.slotOf(p) >= a && keys.slotOf(p) <= b))!
    perMaster.set(owner.port, (perMaster.get(owner.port) ?? 0) + 1)
  }
  t.same([...perMaster.values()], [4, 4, 4])
})

t.test('two server processes on the cluster: a campaign in every partition, exact stock, limits, sequences 1..stock', async (t) => {
  const ids: string[] = []
  for (let p = 0; p < keys.partitions; p++) {
    ids.push(await createCampaign(p % 2 ? a.url : b.url, { name: `c${p}`, stock: 30, perUserLimit: 2 }))
  }
  t.same(new Set(ids.map((id) => keys.partitionOf(id))).size, keys.partitions, 'one campaign per partition')

  // 40 users per campaign, each claiming 3 times over both servers (the third is over the limit): 120
  // attempts for 30 units, at once over every partition.
  const requests: Promise<{ id: string; user: string; res: Awaited<ReturnType<typeof claim>> }>[] = []
  for (const id of ids) {
    for (let i = 0; i < 40; i++) {
      const user = `u${i}`
      for (let k = 0; k < 3; k++) {
        requests.push(claim((i + k) % 2 ? a.url : b.url, id, user).then((res) => ({ id, user, res })))
      }
    }
  }
  const results = await Promise.all(requests)
  t.same(countBy(results.filter((r) => r.res.status >= 500), (r) => r.res.body.code), {}, 'no 5xx')
  for (const id of ids) {
    const mine = results.filter((r) => r.id === id)
    const won = mine.filter((r) => r.res.status === 201)
    t.equal(won.length, 30, `campaign ${id}: exactly the stock`)
    const sequences = won.map((r) => r.res.body.sequence).sort((x, y) => x - y)
    t.same(sequences, Array.from({ length: 30 }, (_, i) => i + 1), `campaign ${id}: sequences 1..30`)
    const perUser = countBy(won, (r) => r.user)
    t.ok(Object.values(perUser).every((n) => n <= 2), `campaign ${id}: nobody above the per-user limit`)
    t.equal(await redis.hget(keys.campaign(id), 'issued'), '30')
    const streamed = (await redis.xrange(keys.streamOf(id), '-', '+'))
      .filter(([, f]) => rawClaim(f)?.campaignId === id)
    t.equal(streamed.length, 30)
  }

  // Reads, claims/me and stock additions route to the campaign's master too.
  for (const id of ids) {
    const got = await http(`${a.url}/v1/campaigns/${id}`)
    t.equal(got.status, 200)
    const first = results.find((r) => r.id === id && r.res.status === 201)!
    const mine = await http(`${b.url}/v1/campaigns/${id}/claims/me`, { token: userToken(first.user) })
    t.equal(mine.status, 200)
    t.ok(mine.body.claims.length >= 1)
  }
})

t.test('the per-user rate limit counts in the campaign\'s slot and holds across instances', async (t) => {
  for (let p = 0; p < keys.partitions; p++) {
    const id = await createCampaign(a.url, { name: `rl${p}`, stock: 100, perUserLimit: 10 })
    const statuses: number[] = []
    for (let i = 0; i < 6; i++) statuses.push((await claim(i % 2 ? a.url : b.url, id, 'greedy')).status)
    t.same(statuses, [201, 201, 201, 429, 429, 429], `campaign ${id}: 3 per window over both instances`)
    const counters: string[] = []
    for (const m of cluster.nodes) {
      const node = cluster.direct(m.port)
      const role = await node.call('ROLE').catch(() => null) as unknown[] | null
      if (role?.[0] !== 'master') continue
      let cursor = '0'
      do {
        const [next, found] = await node.scan(cursor, 'MATCH', `${config.KEY_PREFIX}:*:rl:*`, 'COUNT', 1000)
        cursor = next
        counters.push(...found)
      } while (cursor !== '0')
    }
    // The per-user counter is kept by claim.lua itself, under the campaign's keys.
    const mine = counters.filter((k) => k === keys.userRate(id, 'greedy'))
    t.equal(mine.length, 1, 'one counter')
    t.equal(keySlot(mine[0]!), keys.slotOf(keys.partitionOf(id)), 'in the campaign\'s slot')
  }
})

t.test('sold-out events reach every instance; readiness and metrics cover every master and stream', async (t) => {
  for (let p = 0; p < keys.partitions; p++) {
    const id = await createCampaign(a.url, { name: `so${p}`, stock: 1 })
    t.equal((await claim(b.url, id, 'first')).status, 201)
    t.equal((await claim(b.url, id, 'late')).status, 410, 'B learns it is sold out')
    const add = await http(`${a.url}/admin/campaigns/${id}/stock`, { method: 'POST', admin: true, body: { add: 1 } })
    t.equal(add.status, 200)
    // PUBLISH crosses the cluster bus asynchronously: B may hear it a moment after A answered. The cache
    // lasts 600 s, so a 201 within a few seconds can only come from the event.
    let status = 0
    for (let i = 0; i < 50 && status !== 201; i++) {
      if (i) await new Promise((r) => setTimeout(r, 100))
      status = (await claim(b.url, id, 'after-restock')).status
    }
    t.equal(status, 201, 'the event from A cleared B\'s cache')
    t.equal(await redis.hget(keys.campaign(id), 'issued'), '2')
  }
  const ready = await http(`${a.url}/readyz`)
  t.equal(ready.status, 200)
  const metrics = await fetch(`${a.url}/metrics`, { headers: { authorization: 'Bearer metrics-token-0123456789' } })
    .then((r) => r.text())
  for (const s of keys.streams()) t.match(metrics, `fcfs_stream_backlog{stream="${s}"}`, `metrics report ${s}`)
})
