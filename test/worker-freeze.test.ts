/**
 * A frozen worker (SIGSTOP: a GC pause, a stopped container, a partition) must not stall its campaign's
 * persistence: a batch holds no lock on the campaign's guard row across a round trip to the worker
 * (src/worker/persist.ts), and a session left idle in a transaction anyway is ended after 5 s. While one of
 * two workers is stopped under a steady claim rate, the rows keep rising.
 */
import t from 'tap'
import { testEnv, startApp, createCampaign, claim, one } from './helper.js'
import { rowCount, startedWorker, streamState, waitUntil } from './worker-helper.js'
import { stopProcess } from './process.js'

// The documented bound on what a stopped worker holds (idle_in_transaction_session_timeout of the worker).
const BOUND_MS = 5000
// Stopped for three bounds: long enough for a lock held by the frozen worker's connections in turn to show.
const STOP_MS = 3 * BOUND_MS

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

t.test('one of two workers SIGSTOPped under a steady claim rate: rows keep rising', async (t) => {
  const { config, env, redis, sql } = await testEnv(t, { RATE_LIMIT_IP_MAX: '0', RECLAIM_IDLE_MS: '1500',
    PG_CONNECT_TIMEOUT_MS: '2000', PG_STATEMENT_TIMEOUT_MS: '2000',
    RECLAIM_INTERVAL_MS: '300' })
  const { url } = await startApp(t, config)
  const id = await createCampaign(url, { name: 'freeze', stock: 100_000 })
  const extra = { WORKER_COUNT: '10', WORKER_INFLIGHT: '4' }
  const [a, b] = await Promise.all([startedWorker(t, env, 'frozen', extra), startedWorker(t, env, 'awake', extra)])
  t.teardown(() => { a.child.kill('SIGCONT') })

  // About 200 claims a second, from a few concurrent senders, until told to stop.
  let sending = true
  let sent = 0
  const statuses: Record<number, number> = {}
  const senders = Array.from({ length: 4 }, async (_, s) => {
    for (let i = 0; sending; i++) {
      const res = await claim(url, id, `s${s}-${i}`)
      statuses[res.status] = (statuses[res.status] ?? 0) + 1
      sent++
      await sleep(20)
    }
  })

  await waitUntil('both workers persisting', async () =>
    a.logs.some((l) => l.msg === 'batch persisted') && b.logs.some((l) => l.msg === 'batch persisted'))
  a.child.kill('SIGSTOP')
  const stoppedAt = Date.now()
  let last = await rowCount(sql, id)
  let lastRiseAt = stoppedAt
  let longestStall = 0
  const start = last
  while (Date.now() - stoppedAt < STOP_MS) {
    await sleep(100)
    const n = await rowCount(sql, id)
    const now = Date.now()
    if (n > last) {
      longestStall = Math.max(longestStall, now - lastRiseAt)
      last = n
      lastRiseAt = now
    }
  }
  longestStall = Math.max(longestStall, Date.now() - lastRiseAt)
  a.child.kill('SIGCONT')
  sending = false
  await Promise.all(senders)
  t.comment(`stopped ${STOP_MS} ms: rows ${start} -> ${last}, longest stall ${longestStall} ms, ${sent} claims sent`)
  t.ok(last > start, 'rows rose while the worker was stopped')
  t.ok(longestStall < BOUND_MS, `no stall of ${BOUND_MS} ms or more (longest ${longestStall} ms)`)

  t.same(Object.keys(statuses), ['201'], 'every claim answered 201')
  await waitUntil('every claim persisted', async () => (await rowCount(sql, id)) === sent, 60_000)
  await waitUntil('stream drained', async () => {
    const s = await streamState(redis, config)
    return s.length === 0 && s.pending === 0
  })
  const r = one(await sql`SELECT count(DISTINCT sequence)::int AS seqs FROM claims WHERE campaign_id = ${id}`)
  t.equal(r.seqs, sent, 'each sequence once')
  const [ea, eb] = await Promise.all([stopProcess(a), stopProcess(b)])
  t.same([ea, eb], [{ code: 0, signal: null }, { code: 0, signal: null }])
})
