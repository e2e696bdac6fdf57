/**
 * Claim lifecycle on a real Redis Cluster (3 masters): the lifecycle keys live in the campaign's slot,
 * cancels and confirms run there, and the worker's hold sweep expires holds in every slot.
 */
import t from 'tap'
import { createKeys } from '../src/redis/keys.js'
import { startApp, createCampaign, claim, http, one, userToken } from './helper.js'
import { clusterEnv, startCluster } from './cluster-helper.js'
import { stopProcess } from './process.js'
import { startedWorker, waitUntil } from './worker-helper.js'

const cluster = await startCluster(t, { replicas: 0 })
const { config, env, redis, sql } = await clusterEnv(t, cluster, {
  RATE_LIMIT_IP_MAX: '0', RATE_LIMIT_USER_MAX: '0', SOLD_OUT_CACHE_MS: '0', REDIS_COMMAND_TIMEOUT_MS: '10000',
})
const keys = createKeys(config.KEY_PREFIX, config.STREAM_PARTITIONS)

t.test('holds, confirms, cancels and swept expiries in campaigns on three masters', async (t) => {
  const { url } = await startApp(t, config)
  const node = cluster.direct(cluster.nodes[0]!.port)
  // Campaigns until three of them sit on three different masters.
  const masters = (await cluster.topology()).filter((n) => n.role === 'master')
  const ownerOf = (slot: number) => masters.find((m) => m.slots.some(([a, b]) => slot >= a && slot <= b))!.port
  const byMaster = new Map<number, string>()
  while (byMaster.size < 3) {
    const id = await createCampaign(url, { name: 'tickets', stock: 10, holdSeconds: 4 })
    const owner = ownerOf(keys.slotOf(keys.partitionOf(id)))
    if (!byMaster.has(owner)) byMaster.set(owner, id)
  }
  const ids = [...byMaster.values()]
  for (const id of ids) {
    for (const key of [keys.holds(id), keys.marks(id), keys.users(id)]) {
      t.equal(await node.cluster('KEYSLOT', key), await node.cluster('KEYSLOT', keys.campaign(id)), `${key}: campaign's slot`)
    }
  }

  // Per campaign: 10 holds; 4 confirmed, 3 cancelled, 3 left to the worker's sweep.
  const users = Array.from({ length: 10 }, (_, i) => `u${i}`)
  await Promise.all(ids.map(async (id) => {
    const holds = await Promise.all(users.map((u) => claim(url, id, u)))
    t.same(holds.map((h) => [h.status, h.body.status]), Array(10).fill([201, 'held']), `${id}: 10 holds`)
    const acts = await Promise.all(holds.map((h, i) => (i < 4
      ? http(`${url}/v1/campaigns/${id}/claims/${h.body.claimId}/confirm`, { method: 'POST', token: userToken(users[i]!) })
      : i < 7 ? http(`${url}/v1/campaigns/${id}/claims/${h.body.claimId}`, { method: 'DELETE', token: userToken(users[i]!) })
      : Promise.resolve({ status: 0, body: {} }))))
    t.same(acts.slice(0, 7).map((r) => [r.status, r.body.status]),
      [...Array(4).fill([200, 'confirmed']), ...Array(3).fill([200, 'cancelled'])])
  }))

  const w = await startedWorker(t, env, 'lc-cluster', { HOLD_SWEEP_MS: '100' }, 90_000)
  for (const id of ids) {
    await waitUntil(`${id}: holds swept`, async () => (await redis.zcard(keys.holds(id))) === 0, 30_000)
    t.same(await redis.hmget(keys.campaign(id), 'issued', 'returned'), ['10', '6'], `${id}: 6 units back`)
  }
  for (const id of ids) {
    await waitUntil(`${id}: persisted`, async () => one(await sql`SELECT count(*) FILTER (WHERE expired_at IS NOT NULL)::int AS n
      FROM claims WHERE campaign_id = ${id}`).n === 3, 60_000)
    const row = one(await sql`SELECT count(*)::int AS rows, count(confirmed_at)::int AS confirmed,
      count(cancelled_at)::int AS cancelled, count(expired_at)::int AS expired,
      (SELECT active_claims FROM campaigns WHERE id = ${id}) AS active FROM claims WHERE campaign_id = ${id}`)
    t.same(row, { rows: 10, confirmed: 4, cancelled: 3, expired: 3, active: 4 }, `${id}: PostgreSQL agrees`)
    t.match((await http(`${url}/v1/campaigns/${id}`)).body, { remaining: 6, state: 'open' })
  }
  t.same(await stopProcess(w), { code: 0, signal: null })
})
