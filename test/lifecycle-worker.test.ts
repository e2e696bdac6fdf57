/**
 * The worker applies lifecycle events exactly once whatever the order they reach it in: a cancellation
 * reclaimed before its claim, a worker killed -9 between a claim and its cancellation, cancellations
 * racing the persistence of their claims.
 */
import t from 'tap'
import type postgres from 'postgres'
import { createKeys } from '../src/redis/keys.js'
import { testEnv, startApp, createCampaign, claim, http, one, userToken } from './helper.js'
import { batchLines, claimMany, startedWorker, streamState, waitUntil } from './worker-helper.js'
import { stopProcess } from './process.js'

// Small idle times so reclaiming happens within the test; the production default is 30 s.
const FAST = { RATE_LIMIT_IP_MAX: '0', RATE_LIMIT_USER_MAX: '0', SOLD_OUT_CACHE_MS: '0', RECLAIM_IDLE_MS: '1000',
  RECLAIM_INTERVAL_MS: '300' }

const cancel = (url: string, id: string, claimId: string, user: string) =>
  http(`${url}/v1/campaigns/${id}/claims/${claimId}`, { method: 'DELETE', token: userToken(user) })

async function dbState(sql: postgres.Sql, id: string) {
  return one(await sql`SELECT count(*)::int AS rows, count(DISTINCT claim_id)::int AS ids,
    count(*) FILTER (WHERE cancelled_at IS NOT NULL)::int AS cancelled,
    (SELECT active_claims FROM campaigns WHERE id = ${id}) AS counter,
    (SELECT count(*)::int FROM failed_claims) AS failed
    FROM claims WHERE campaign_id = ${id}`)
}

const drained = (redis: Parameters<typeof streamState>[0], config: Parameters<typeof streamState>[1]) => async () => {
  const s = await streamState(redis, config)
  return s.length === 0 && s.pending === 0
}

t.test('a cancellation reclaimed before its claim: the row is written cancelled, once', async (t) => {
  const { config, env, redis, sql } = await testEnv(t, FAST)
  const { url } = await startApp(t, config)
  const keys = createKeys(config.KEY_PREFIX, config.STREAM_PARTITIONS)
  const id = await createCampaign(url, { name: 'order', stock: 5 })
  const stream = keys.streamOf(id)
  const a = await claim(url, id, 'alice')
  t.equal(a.status, 201)
  // A consumer that dies holding the claim entry: only the cancellation is new for the worker.
  await redis.xgroup('CREATE', stream, config.WORKER_GROUP, '0', 'MKSTREAM')
  const got = await redis.xreadgroup('GROUP', config.WORKER_GROUP, 'dead', 'COUNT', 1, 'STREAMS', stream, '>')
  t.equal((got as [string, unknown[]][])[0]![1].length, 1, 'the claim entry is pending with a dead consumer')
  t.match(await cancel(url, id, a.body.claimId, 'alice'), { status: 200, body: { status: 'cancelled' } })

  const w = await startedWorker(t, env, 'lc-order', {}, 90_000)
  await waitUntil('drained', drained(redis, config), 60_000)
  const batches = await batchLines([w], (l) => l.length >= 2)
  t.ok(batches.length >= 2, 'the cancellation and the reclaimed claim came in separate batches')
  t.same(await dbState(sql, id), { rows: 1, ids: 1, cancelled: 1, counter: 0, failed: 0 },
    'one row, cancelled; the late claim insert changed nothing')
  const [row] = await sql`SELECT user_id, sequence FROM claims WHERE claim_id = ${a.body.claimId}`
  t.same({ ...row }, { user_id: 'alice', sequence: 1 })
  t.same(await stopProcess(w), { code: 0, signal: null })
})

t.test('kill -9 of the worker between claims and their cancellations, then cancels racing persistence', async (t) => {
  const { config, env, redis, sql } = await testEnv(t, FAST)
  const { url } = await startApp(t, config)
  const id = await createCampaign(url, { name: 'kill', stock: 200 })
  const users = Array.from({ length: 100 }, (_, i) => `u${i}`)
  const claims = new Map<string, string>()
  await Promise.all(users.map(async (u) => {
    const r = await claim(url, id, u)
    if (r.status === 201) claims.set(u, r.body.claimId)
  }))
  t.equal(claims.size, 100)

  // The worker takes the backlog, its batch frozen on the campaign row lock, and dies without a word;
  // half the claims are cancelled while it is dead.
  const lock = await sql.reserve()
  await lock`BEGIN`
  await lock`SELECT 1 FROM campaigns WHERE id = ${id} FOR UPDATE`
  const doomed = await startedWorker(t, env, 'lc-doomed', {}, 90_000)
  await waitUntil('the worker holds every claim', async () => (await streamState(redis, config)).pending === 100,
    60_000)
  doomed.child.kill('SIGKILL')
  await doomed.exited
  // A batch is one implicit transaction that PostgreSQL commits without waiting for the worker
  // (src/worker/persist.ts), so the dead worker's statement, queued on the lock, would still commit once the
  // lock goes (harmless: the entries stay pending and their redelivery is a no-op). The server notices the
  // dead client only when it writes the answer; end those sessions now, so the claims stay unpersisted.
  await sql`SELECT pg_terminate_backend(pid) FROM pg_stat_activity
    WHERE datname = current_database() AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'`
  await lock`ROLLBACK`
  lock.release()
  t.equal(one(await sql`SELECT count(*)::int AS n FROM claims`).n, 0, 'nothing was persisted before the kill')
  const cancelled = users.slice(0, 50)
  const answers = await Promise.all(cancelled.map((u) => cancel(url, id, claims.get(u)!, u)))
  t.same(answers.map((r) => r.status), Array(50).fill(200), '50 cancellations answered 200')

  // A new worker: reclaims what the dead one held, persists the cancellations. Meanwhile 60 more claims,
  // each cancelled as soon as it is answered, so cancels race the persistence of their own claims.
  const w = await startedWorker(t, env, 'lc-heir', {}, 90_000)
  const more = Array.from({ length: 60 }, (_, i) => `v${i}`)
  const raced = await Promise.all(more.map(async (u) => {
    const r = await claim(url, id, u)
    return r.status === 201 ? (await cancel(url, id, r.body.claimId, u)).status : r.status
  }))
  t.same(raced, Array(60).fill(200), 'every racing claim issued and cancelled')
  t.same(await claimMany(url, id, ['late']), { 201: 1 })
  await waitUntil('drained', drained(redis, config), 90_000)
  t.same(await dbState(sql, id), { rows: 161, ids: 161, cancelled: 110, counter: 51, failed: 0 },
    '161 rows once each, the 110 cancelled ones cancelled, 51 holding a unit')
  const cancelledRows = await sql`SELECT user_id FROM claims WHERE campaign_id = ${id} AND cancelled_at IS NOT NULL`
  t.same(cancelledRows.map((r) => r.user_id).sort(), [...cancelled, ...more].sort(), 'exactly the cancelled claims')
  const keys = createKeys(config.KEY_PREFIX, config.STREAM_PARTITIONS)
  t.same(await redis.hmget(keys.campaign(id), 'issued', 'returned'), ['161', '110'], 'Redis agrees: 161 - 110 = 51')
  t.same(await stopProcess(w), { code: 0, signal: null })
})
