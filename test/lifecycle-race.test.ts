import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { createKeys } from '../src/redis/keys.js'
import { parseUserRecord, holdsUnit } from '../src/redis/users-record.js'
import { one, testEnv, spawnServer, freePort, createCampaign, claim, http, userToken } from './helper.js'
import { startedWorker, streamState, waitUntil } from './worker-helper.js'
import { stopProcess } from './process.js'

/** Runs fn over items, `concurrency` at a time. */
async function pool<T>(items: T[], concurrency: number, fn: (x: T) => Promise<void>): Promise<void> {
  let next = 0
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < items.length) await fn(items[next++]!)
  }))
}

t.test('stock 500: 200 cancels race 2,000 new claimers over two API processes', async (t) => {
  const { config, env, redis, sql } = await testEnv(t, { RATE_LIMIT_IP_MAX: '0', RATE_LIMIT_USER_MAX: '0' })
  const [a, b] = await Promise.all([freePort().then((p) => spawnServer(t, env, p, 90_000)),
    freePort().then((p) => spawnServer(t, env, p, 90_000))])
  const keys = createKeys(config.KEY_PREFIX, config.STREAM_PARTITIONS)
  const worker = await startedWorker(t, env, 'lc-race', {}, 90_000)
  const id = await createCampaign(a.url, { name: 'race', stock: 500 })
  const urlOf = (i: number) => (i % 2 ? a.url : b.url)

  const first: { user: string; claimId: string; sequence: number }[] = []
  await pool(Array.from({ length: 500 }, (_, i) => i), 50, async (i) => {
    const r = await claim(urlOf(i), id, `first-${i}`)
    if (r.status === 201) first.push({ user: `first-${i}`, claimId: r.body.claimId, sequence: r.body.sequence })
  })
  t.equal(first.length, 500, '500 claims')

  const cancelled = first.filter((_, i) => i % 5 < 2)
  let cancelsDone = false
  const cancelStatuses: number[] = []
  const cancels = pool(cancelled, 20, async (c) => {
    const r = await http(`${urlOf(c.sequence)}/v1/campaigns/${id}/claims/${c.claimId}`, { method: 'DELETE', token: userToken(c.user) })
    cancelStatuses.push(r.status)
  }).then(() => { cancelsDone = true })

  // Every newcomer keeps trying while cancellations are still coming, and tries once more after.
  const won: { user: string; sequence: number }[] = []
  const others: Record<number, number> = {}
  const claimers = pool(Array.from({ length: 2000 }, (_, i) => i), 100, async (i) => {
    const user = `new-${i}`
    for (;;) {
      const doneBefore = cancelsDone
      const r = await claim(urlOf(i), id, user)
      if (r.status === 201) { won.push({ user, sequence: r.body.sequence }); return }
      if (r.status !== 410) { others[r.status] = (others[r.status] ?? 0) + 1; return }
      if (doneBefore) return
      await sleep(5)
    }
  })
  await Promise.all([cancels, claimers])
  t.same(cancelStatuses, Array(200).fill(200), '200 cancellations answered 200')
  t.equal(won.length, 200, 'exactly 200 more 201s')
  t.same(others, {}, 'newcomers only ever got 201 or 410')
  const allSeqs = [...first.map((c) => c.sequence), ...won.map((c) => c.sequence)]
  t.equal(new Set(allSeqs).size, 700, 'sequences unique')
  t.ok(won.every((w) => w.sequence > 500), 'returned units go out under new sequences beyond the first 500')

  // Redis: 700 sequences, 200 returned, 500 active, nobody above the limit.
  const live = await redis.hmget(keys.campaign(id), 'issued', 'returned')
  t.same(live, ['700', '200'])
  const records = Object.values(await redis.hgetall(keys.users(id))).map((r) => parseUserRecord(r).claims)
  const activeRedis = records.flat().filter((c) => holdsUnit(c.mark))
  t.equal(activeRedis.length, 500, 'active claims in Redis == stock')
  t.ok(records.every((r) => r.filter((c) => holdsUnit(c.mark)).length <= 1), 'no user above the limit')
  const pub = await http(`${a.url}/v1/campaigns/${id}`)
  t.match(pub.body, { remaining: 0, state: 'sold_out' })

  await waitUntil('drained', async () => { const s = await streamState(redis, config); return s.length === 0 && s.pending === 0 }, 60_000)
  const [db] = await sql`SELECT count(*)::int AS rows, count(*) FILTER (WHERE cancelled_at IS NULL)::int AS active,
    count(DISTINCT sequence)::int AS seqs, (SELECT active_claims FROM campaigns WHERE id = ${id}) AS counter
    FROM claims WHERE campaign_id = ${id}`
  t.same(db, { rows: 700, active: 500, seqs: 700, counter: 500 }, 'PostgreSQL agrees: 700 rows, 500 active')
  const cancelledRows = await sql`SELECT claim_id FROM claims WHERE campaign_id = ${id} AND cancelled_at IS NOT NULL`
  t.same(cancelledRows.map((r) => r.claim_id).sort(), cancelled.map((c) => c.claimId).sort(), 'exactly the cancelled claims are cancelled rows')
  const { over } = one(await sql`SELECT count(*)::int AS over FROM (SELECT user_id FROM claims WHERE campaign_id = ${id} AND cancelled_at IS NULL GROUP BY user_id HAVING count(*) > 1) x`)
  t.equal(over, 0)
  const { n: dead } = one(await sql`SELECT count(*)::int AS n FROM failed_claims`)
  t.equal(dead, 0, 'nothing dead-lettered')
  t.same(await stopProcess(worker), { code: 0, signal: null })
})
