import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { createKeys } from '../src/redis/keys.js'
import { parseUserRecord, holdsUnit } from '../src/redis/users-record.js'
import { testEnv, startApp, createCampaign, claim, http, userToken } from './helper.js'
import { startedWorker, streamState, waitUntil } from './worker-helper.js'
import { stopProcess } from './process.js'

const confirm = (url: string, id: string, claimId: string, user: string) =>
  http(`${url}/v1/campaigns/${id}/claims/${claimId}/confirm`, { method: 'POST', token: userToken(user) })

async function pool<T>(items: T[], concurrency: number, fn: (x: T) => Promise<void>): Promise<void> {
  let next = 0
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < items.length) await fn(items[next++]!)
  }))
}

t.test('holds: stock 100, holdSeconds 2, 60 confirmed, 40 expire while 500 claimers race', async (t) => {
  const { config, env, redis, sql } = await testEnv(t, { RATE_LIMIT_IP_MAX: '0', RATE_LIMIT_USER_MAX: '0' })
  const { url } = await startApp(t, config)
  const keys = createKeys(config.KEY_PREFIX, config.STREAM_PARTITIONS)
  const worker = await startedWorker(t, env, 'lc-holds', { HOLD_SWEEP_MS: '100' }, 90_000)
  const id = await createCampaign(url, { name: 'tickets', stock: 100, holdSeconds: 2 })

  // Never more units held than the stock, at any moment (each sample is one atomic HGETALL).
  let maxHeld = 0
  let sampling = true
  const sampler = (async () => {
    while (sampling) {
      const held = Object.values(await redis.hgetall(keys.users(id))).flatMap((r) => parseUserRecord(r).claims)
        .filter((c) => holdsUnit(c.mark)).length
      maxHeld = Math.max(maxHeld, held)
      await sleep(20)
    }
  })()

  // 100 holds; the first 60 users confirm theirs right away, the other 40 let them lapse.
  const holds: { user: string; claimId: string; expiresAt: string }[] = []
  const confirmed: { user: string; claimId: string; body: any }[] = []
  const lapsing: typeof holds = []
  await pool(Array.from({ length: 100 }, (_, i) => i), 50, async (i) => {
    const r = await claim(url, id, `h-${i}`)
    if (r.status !== 201) return
    if (r.body.status !== 'held' || !r.body.expiresAt) t.fail(`not a hold: ${JSON.stringify(r.body)}`)
    const h = { user: `h-${i}`, claimId: r.body.claimId, expiresAt: r.body.expiresAt }
    holds.push(h)
    if (i < 60) {
      const c = await confirm(url, id, h.claimId, h.user)
      if (c.status === 200) confirmed.push({ ...h, body: c.body })
    } else {
      lapsing.push(h)
    }
  })
  t.equal(holds.length, 100, '100 holds')
  t.equal(confirmed.length, 60, '60 confirmed before they expired')
  t.match(confirmed[0]!.body, { claimId: confirmed[0]!.claimId, status: 'confirmed', userId: confirmed[0]!.user })
  t.match(await confirm(url, id, confirmed[0]!.claimId, confirmed[0]!.user), { status: 200, body: confirmed[0]!.body }, 'confirm is idempotent')
  t.match(await confirm(url, id, confirmed[1]!.claimId, 'someone-else'), { status: 404, body: { code: 'CLAIM_NOT_FOUND' } })

  // 500 newcomers race for the units the lapsing holds give back; each confirms what it wins. A winner
  // whose confirm comes too late (a stalled machine) lost its hold like anyone else: it tries again, and
  // that extra issue is counted apart, so the accounting below stays exact however slow the run.
  const firstLapse = Math.min(...lapsing.map((h) => Date.parse(h.expiresAt)))
  const deadline = Date.now() + 60_000
  let confirmedRacers = 0
  let issuedToRacers = 0
  let lapsedRacerHolds = 0
  await sleep(Math.max(0, firstLapse - 300 - Date.now()))
  await pool(Array.from({ length: 500 }, (_, i) => i), 500, async (i) => {
    const user = `r-${i}`
    await sleep(Math.random() * 300)
    while (Date.now() < deadline && confirmed.length + confirmedRacers < 100) {
      const r = await claim(url, id, user)
      if (r.status === 201) {
        issuedToRacers++
        const c = await confirm(url, id, r.body.claimId, user)
        if (c.status === 200) { confirmedRacers++; return }
        if (c.body.code !== 'HOLD_EXPIRED') t.fail(`confirm: ${JSON.stringify(c.body)}`)
        lapsedRacerHolds++
      } else if (r.status !== 410) {
        t.fail(`claim: ${r.status} ${JSON.stringify(r.body)}`)
        return
      }
      await sleep(250 + Math.random() * 150)
    }
  })
  sampling = false
  await sampler
  t.equal(confirmedRacers, 40, '40 newcomers hold confirmed units')
  t.equal(issuedToRacers - lapsedRacerHolds, 40, 'exactly 40 more units issued (one per lapsed hold, besides holds that lapsed again)')
  if (lapsedRacerHolds) t.comment(`${lapsedRacerHolds} newcomer hold(s) lapsed before their confirm on this busy machine`)
  t.ok(maxHeld <= 100, `confirmed + active holds never above stock (max seen ${maxHeld})`)
  const total = 140 + lapsedRacerHolds
  t.same(await redis.hmget(keys.campaign(id), 'issued', 'returned'), [String(total), String(total - 100)])
  t.equal(await redis.zcard(keys.holds(id)), 0, 'no hold left open')

  // A confirm that lost the race with expiry, and a cancel of an expired hold.
  t.match(await confirm(url, id, lapsing[0]!.claimId, lapsing[0]!.user), { status: 409, body: { code: 'HOLD_EXPIRED' } })
  t.match(await http(`${url}/v1/campaigns/${id}/claims/${lapsing[0]!.claimId}`, { method: 'DELETE', token: userToken(lapsing[0]!.user) }),
    { status: 409, body: { code: 'HOLD_EXPIRED' } })
  const me = await http(`${url}/v1/campaigns/${id}/claims/me`, { token: userToken(lapsing[1]!.user) })
  t.match(me.body.claims, [{ claimId: lapsing[1]!.claimId, state: 'expired' }])

  await waitUntil('drained', async () => { const s = await streamState(redis, config); return s.length === 0 && s.pending === 0 }, 60_000)
  const [db] = await sql`SELECT count(*)::int AS rows,
      count(*) FILTER (WHERE confirmed_at IS NOT NULL AND expired_at IS NULL)::int AS confirmed,
      count(*) FILTER (WHERE expired_at IS NOT NULL AND confirmed_at IS NULL)::int AS expired,
      count(*) FILTER (WHERE hold_expires_at IS NULL)::int AS without_hold,
      (SELECT active_claims FROM campaigns WHERE id = ${id}) AS counter
    FROM claims WHERE campaign_id = ${id}`
  t.same(db, { rows: total, confirmed: 100, expired: total - 100, without_hold: 0, counter: 100 }, 'PostgreSQL agrees')
  const expired = await sql`SELECT claim_id, extract(epoch FROM expired_at - hold_expires_at) * 1000 AS late_ms FROM claims
    WHERE campaign_id = ${id} AND expired_at IS NOT NULL`
  t.ok(lapsing.every((h) => expired.some((r) => r.claim_id === h.claimId)), 'every unconfirmed hold expired')
  t.equal(expired.length, 40 + lapsedRacerHolds)
  const late = Math.max(...expired.map((r) => Number(r.late_ms)))
  t.ok(expired.every((r) => Number(r.late_ms) >= 0), 'none expired early')
  t.ok(late < 1500, `each expired within about a second of its expiresAt (latest ${Math.round(late)} ms)`)
  t.same(await stopProcess(worker), { code: 0, signal: null })
})

t.test('the worker alone expires holds on time (no claims arriving)', async (t) => {
  const { config, env, redis, sql } = await testEnv(t, { RATE_LIMIT_IP_MAX: '0', RATE_LIMIT_USER_MAX: '0' })
  const { url } = await startApp(t, config)
  const keys = createKeys(config.KEY_PREFIX, config.STREAM_PARTITIONS)
  const worker = await startedWorker(t, env, 'lc-sweep', {}, 90_000)
  const id = await createCampaign(url, { name: 'quiet', stock: 3, holdSeconds: 1 })
  const r = await claim(url, id, 'q')
  t.match(r.body, { status: 'held' })
  t.match(await confirm(url, id, (await claim(url, id, 'final')).body.claimId, 'final'), { status: 200 })
  const expiresAt = Date.parse(r.body.expiresAt)
  await waitUntil('hold expired by the sweep', async () => (await redis.hget(keys.campaign(id), 'returned')) === '1', 10_000)
  t.ok(Date.now() - expiresAt < 1500, 'within about a second')
  t.match(await http(`${url}/v1/campaigns/${id}`), { body: { remaining: 2 } })
  await waitUntil('expiry persisted', async () => (await sql`SELECT expired_at FROM claims WHERE claim_id = ${r.body.claimId}`)[0]?.expired_at)
  t.same(await stopProcess(worker), { code: 0, signal: null })

  // Confirming a final claim: nothing to confirm.
  const plain = await createCampaign(url, { name: 'final', stock: 1 })
  const p = await claim(url, plain, 'p')
  t.notOk('status' in p.body, 'a final claim carries no hold status')
  t.match(await confirm(url, plain, p.body.claimId, 'p'), { status: 409, body: { code: 'NOT_A_HOLD' } })
  t.match(await http(`${url}/admin/campaigns`, { method: 'POST', admin: true, body: { name: 'x', stock: 1, holdSeconds: 0 } }), { status: 400, body: { code: 'VALIDATION' } })
})
