import t from 'tap'
import type postgres from 'postgres'
import { createKeys } from '../src/redis/keys.js'
import { testEnv, startApp, createCampaign, one } from './helper.js'
import { claimMany, consumers, rowCount, startedWorker, streamState, waitUntil } from './worker-helper.js'
import { stopProcess } from './process.js'

// Small idle times so reclaiming happens within the test; the production default is 30 s.
const FAST_RECLAIM = { RATE_LIMIT_IP_MAX: '0', RECLAIM_IDLE_MS: '1500', RECLAIM_INTERVAL_MS: '300' }

/** Holds the campaign row lock so a worker's insert (its FK check) blocks: a batch frozen mid-flight. */
async function lockCampaign(sql: postgres.Sql, id: string): Promise<() => Promise<void>> {
  const conn = await sql.reserve()
  await conn`BEGIN`
  await conn`SELECT 1 FROM campaigns WHERE id = ${id} FOR UPDATE`
  return async () => {
    await conn`COMMIT`
    conn.release()
  }
}

async function assertExactlyOnce(t: Tap, sql: postgres.Sql, id: string, n: number) {
  const [r] = await sql`SELECT count(*)::int AS n, count(DISTINCT sequence)::int AS seqs, count(DISTINCT claim_id)::int AS ids FROM claims WHERE campaign_id = ${id}`
  t.same({ ...r }, { n, seqs: n, ids: n }, `${n} rows, each sequence and claim once`)
  const { failed } = one(await sql`SELECT count(*)::int AS failed FROM failed_claims`)
  t.equal(failed, 0, 'nothing dead-lettered')
}

type Tap = Pick<typeof t, 'same' | 'equal'>

t.test('kill -9 mid-batch: another worker reclaims the orphaned entries, the dead consumer is removed', async (t) => {
  const { config, env, redis, sql } = await testEnv(t, FAST_RECLAIM)
  const { url } = await startApp(t, config)
  const id = await createCampaign(url, { name: 'k', stock: 300 })
  const stream = createKeys(config.KEY_PREFIX, config.STREAM_PARTITIONS).streamOf(id)

  // A backlog first: the worker reads one batch (stuck on the lock) and prefetches the next, 300 in all.
  t.same(await claimMany(url, id, Array.from({ length: 300 }, (_, i) => `u${i}`)), { 201: 300 })
  const release = await lockCampaign(sql, id)
  const a = await startedWorker(t, env, 'doomed', { WORKER_COUNT: '150' })
  await waitUntil('the doomed worker holds every entry',
    async () => (await streamState(redis, config)).byConsumer.doomed === 300)
  a.child.kill('SIGKILL')
  t.same(await a.exited, { code: null, signal: 'SIGKILL' })
  await release()

  const b = await startedWorker(t, env, 'heir', { WORKER_COUNT: '100' })
  await waitUntil('stream drained', async () => {
    const s = await streamState(redis, config)
    return s.length === 0 && s.pending === 0
  })
  const reclaimed = b.logs.filter((l) => l.msg === 'reclaimed idle entries').reduce((n, l) => n + Number(l.entries), 0)
  t.equal(reclaimed, 300, 'the heir reclaimed all 300 orphaned entries')
  await assertExactlyOnce(t, sql, id, 300)
  await waitUntil('dead consumer removed', async () => !(await consumers(redis, stream)).includes('doomed'))
  t.same(await consumers(redis, stream), ['heir'])
  t.same(await stopProcess(b), { code: 0, signal: null })
})

t.test('SIGSTOP past the idle time while another worker claims its entries, then SIGCONT: one row each', async (t) => {
  const { config, env, redis, sql } = await testEnv(t, FAST_RECLAIM)
  const { url } = await startApp(t, config)
  const id = await createCampaign(url, { name: 's', stock: 200 })

  t.same(await claimMany(url, id, Array.from({ length: 200 }, (_, i) => `u${i}`)), { 201: 200 })
  const release = await lockCampaign(sql, id)
  const a = await startedWorker(t, env, 'sleeper', { WORKER_COUNT: '100' })
  await waitUntil('the sleeper holds every entry',
    async () => (await streamState(redis, config)).byConsumer.sleeper === 200)
  a.child.kill('SIGSTOP')

  const b = await startedWorker(t, env, 'thief', { WORKER_COUNT: '50' })
  // The thief's first reclaimed page is now stuck behind the lock too.
  await waitUntil('the thief took entries over',
    async () => ((await streamState(redis, config)).byConsumer.thief ?? 0) > 0)
  // Both now race for the same rows: the sleeper's statement still sits in Postgres, the thief's queues behind it.
  await release()
  await waitUntil('the thief acked everything', async () => {
    const s = await streamState(redis, config)
    return s.length === 0 && s.pending === 0
  })
  a.child.kill('SIGCONT')
  const before = a.logs.filter((l) => l.msg === 'batch persisted').length
  // The sleeper wakes up holding its stale batch (and the one it had prefetched): both must be no-ops.
  await waitUntil('the sleeper finished its stale batches',
    async () => a.logs.filter((l) => l.msg === 'batch persisted').length >= before + 1)
  await assertExactlyOnce(t, sql, id, 200)
  const inserted = [a, b].flatMap((w) => w.logs).filter((l) => l.msg === 'batch persisted').reduce((n,
    l) => n + Number(l.inserted), 0)
  t.equal(inserted, 200, 'the two workers inserted 200 rows between them, no more')
  const [ea, eb] = await Promise.all([stopProcess(a), stopProcess(b)])
  t.same([ea, eb], [{ code: 0, signal: null }, { code: 0, signal: null }])
  const s = await streamState(redis, config)
  t.same([s.length, s.pending], [0, 0])
})

t.test('SIGTERM during a burst: exit 0, nothing left pending by that consumer', async (t) => {
  const { config, env, redis, sql } = await testEnv(t, { RATE_LIMIT_IP_MAX: '0' })
  const { url } = await startApp(t, config)
  const id = await createCampaign(url, { name: 'b', stock: 2000 })
  const a = await startedWorker(t, env, 'leaver', { WORKER_COUNT: '20' })

  const burst = claimMany(url, id, Array.from({ length: 2000 }, (_, i) => `u${i}`))
  await a.waitForLog((l) => l.msg === 'batch persisted')
  a.child.kill('SIGTERM')
  t.same(await a.exited, { code: 0, signal: null })
  t.ok(a.logs.some((l) => l.msg === 'worker stopping: finishing the batch in hand'))
  t.same(await burst, { 201: 2000 })

  const s = await streamState(redis, config)
  t.equal(s.byConsumer.leaver ?? 0, 0, 'the stopped consumer holds nothing')
  t.equal(s.pending, 0)
  const persisted = await rowCount(sql, id)
  t.ok(persisted > 0, 'it persisted part of the burst')
  t.equal(persisted + s.length, 2000, 'every claim is either a row or still in the stream')

  const b = await startedWorker(t, env, 'finisher', { WORKER_COUNT: '500' })
  await waitUntil('drained', async () => (await rowCount(sql, id)) === 2000)
  await assertExactlyOnce(t, sql, id, 2000)
  t.same(await stopProcess(b), { code: 0, signal: null })
})
