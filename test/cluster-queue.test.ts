/**
 * Waiting rooms on a real Redis Cluster (3 masters, no replicas): every queue key in its campaign's slot,
 * the draw, admission and the claim's admission check working in campaigns on each master.
 */
import { createHash } from 'node:crypto'
import t from 'tap'
import { createKeys } from '../src/redis/keys.js'
import { startApp, claim, countBy, createCampaign, http, userToken } from './helper.js'
import { clusterEnv, startCluster } from './cluster-helper.js'
import { waitUntil } from './worker-helper.js'

const sha = (s: string) => createHash('sha256').update(s).digest('hex')

t.test('queue on a cluster: keys in the slot, draw, admission, exact stock', async (t) => {
  const cluster = await startCluster(t, { masters: 3, replicas: 0 })
  const { config } = await clusterEnv(t, cluster, { RATE_LIMIT_USER_MAX: '0', QUEUE_TICK_MS: '50',
    REDIS_COMMAND_TIMEOUT_MS: '10000' })
  const keys = createKeys(config.KEY_PREFIX, config.STREAM_PARTITIONS)
  const { url } = await startApp(t, config)
  const node = cluster.direct(cluster.nodes[0]!.port)

  const opensAt = Date.now() + 10_000
  // Three campaigns: partitions 1, 5, 9 sit on three different masters (12 partitions over 3).
  const ids: string[] = []
  for (let i = 0; i < 9; i++) {
    const id = await createCampaign(url, { name: `q${i}`, stock: 3, opensAt: new Date(opensAt).toISOString(),
      queue: { order: 'shuffle', admitPerSecond: 100, admitSeconds: 30 } })
    if ([1, 5, 9].includes(keys.partitionOf(id))) ids.push(id)
  }
  t.equal(ids.length, 3)
  for (const id of ids) {
    const p = keys.partitionOf(id)
    for (const key of [keys.queueUsers(id), keys.queuePositions(id), keys.queueAdmits(id), keys.queueDraw(id),
      keys.queueLog(id), keys.queueAnswers(id), keys.queueDrawLock(id)]) {
      t.equal(await node.cluster('KEYSLOT', key), keys.slotOf(p), `${key} in the campaign's slot`)
    }
  }

  const users = Array.from({ length: 10 }, (_, i) => `u${i}`)
  const tickets = new Map<string, Map<string, string>>()
  await Promise.all(ids.map(async (id) => {
    const m = new Map<string, string>()
    await Promise.all(users.map(async (u) => {
      const r = await http(`${url}/v1/campaigns/${id}/queue`, { method: 'POST', token: userToken(u) })
      t.match(r, { status: 201, body: { state: 'pre_queue' } })
      m.set(u, r.body.ticket)
    }))
    tickets.set(id, m)
  }))
  t.ok(Date.now() < opensAt, 'every join was before the opening')
  for (const id of ids) {
    await waitUntil('drawn and admitted', async () => (await http(`${url}/v1/campaigns/${id}/queue`)).body.servingUpTo === 3,
      20_000)
    const draw = (await http(`${url}/v1/campaigns/${id}/queue/draw`)).body
    const mine = tickets.get(id)!
    const expected = [...mine.values()].sort((x, y) => (sha(`${draw.seed}:${x}`) < sha(`${draw.seed}:${y}`) ? -1 : 1))
    t.same(draw.tickets, expected, `campaign ${id}: the draw recomputes`)
    const statuses: number[] = []
    await Promise.all(users.map(async (u) => { statuses.push((await claim(url, id, u)).status) }))
    t.same(countBy(statuses, (s) => s), { 201: 3, 403: 7 }, `campaign ${id}: the 3 admitted claim, 7 are refused`)
    const admitted = expected.slice(0, 3)
    for (const [u, tk] of mine) {
      const me = (await http(`${url}/v1/campaigns/${id}/queue/me`, { token: userToken(u) })).body
      t.equal(me.state, admitted.includes(tk) ? 'claimed' : 'sold_out', `campaign ${id}, ${u}`)
    }
  }
})
