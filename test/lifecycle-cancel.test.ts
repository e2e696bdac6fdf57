import { randomUUID } from 'node:crypto'
import t from 'tap'
import { createKeys } from '../src/redis/keys.js'
import { rawEvent } from '../src/redis/stream-entry.js'
import { one, testEnv, startApp, createCampaign, claim, http, userToken } from './helper.js'
import { startedWorker, streamState, waitUntil } from './worker-helper.js'
import { stopProcess } from './process.js'

const cancel = (url: string, id: string, claimId: string, user: string) =>
  http(`${url}/v1/campaigns/${id}/claims/${claimId}`, { method: 'DELETE', token: userToken(user) })
const revoke = (url: string, id: string, claimId: string, body?: unknown) =>
  http(`${url}/admin/campaigns/${id}/claims/${claimId}`, { method: 'DELETE', admin: true, body })

t.test('cancel: owner only, replayed, unit returned under a new sequence, persisted with the reason', async (t) => {
  const { config, env, redis, sql } = await testEnv(t, { RATE_LIMIT_IP_MAX: '0', RATE_LIMIT_USER_MAX: '0', SOLD_OUT_CACHE_MS: '0' })
  const { url } = await startApp(t, config)
  const keys = createKeys(config.KEY_PREFIX, config.STREAM_PARTITIONS)
  const id = await createCampaign(url, { name: 'cancel', stock: 2 })
  const a = await claim(url, id, 'alice')
  const b = await claim(url, id, 'bob')
  t.equal((await claim(url, id, 'carol')).status, 410, 'sold out')

  // Bad input.
  const bad = await cancel(url, id, 'not-a-uuid', 'alice')
  t.match(bad, { status: 400, body: { code: 'VALIDATION' } })
  t.notMatch(JSON.stringify(bad.body), /at .*\.ts/, 'no stack trace')
  t.match(await cancel(url, id, b.body.claimId, 'alice'), { status: 404, body: { code: 'CLAIM_NOT_FOUND' } }, "someone else's claim")
  t.match(await cancel(url, id, randomUUID(), 'alice'), { status: 404, body: { code: 'CLAIM_NOT_FOUND' } }, 'unknown claim')
  t.match(await cancel(url, '999999', a.body.claimId, 'alice'), { status: 404, body: { code: 'CAMPAIGN_NOT_FOUND' } })
  t.match(await http(`${url}/v1/campaigns/${id}/claims/${a.body.claimId}`, { method: 'DELETE' }), { status: 401 })

  const first = await cancel(url, id, a.body.claimId, 'alice')
  t.equal(first.status, 200)
  t.match(first.body, { claimId: a.body.claimId, campaignId: id, userId: 'alice', sequence: 1, status: 'cancelled' })
  t.ok(Date.parse(first.body.cancelledAt) > 0)
  const again = await cancel(url, id, a.body.claimId.toUpperCase(), 'alice')
  t.same(again, { ...again, status: 200, body: first.body }, 'a second cancel replays the first answer')
  t.equal(await redis.hget(keys.campaign(id), 'returned'), '1', 'one unit returned, once')

  const pub = await http(`${url}/v1/campaigns/${id}`)
  t.match(pub.body, { remaining: 1, state: 'open' }, 'remaining counts the returned unit')
  const c = await claim(url, id, 'carol')
  t.match(c, { status: 201, body: { sequence: 3 } }, 'the returned unit goes out under a new sequence beyond the last')
  t.equal((await claim(url, id, 'dave')).status, 410)
  const again2 = await claim(url, id, 'alice')
  t.equal(again2.status, 410, 'alice may claim again, but the stock is gone')
  t.match(await cancel(url, id, c.body.claimId, 'carol'), { status: 200 })
  t.match(await claim(url, id, 'alice'), { status: 201, body: { sequence: 4 } }, 'a user who cancelled may claim again under the limit')
  t.match(await claim(url, id, 'alice'), { status: 409, body: { code: 'ALREADY_CLAIMED', sequences: [4] } }, 'the cancelled claim does not count, the new one does')
  const me = await http(`${url}/v1/campaigns/${id}/claims/me`, { token: userToken('alice') })
  t.same(me.body.claims.map((x: { sequence: number; state: string }) => [x.sequence, x.state]), [[1, 'cancelled'], [4, 'active']])

  // Admin revoke of a claim only the stream knows (no worker yet), with a reason.
  const r = await revoke(url, id, b.body.claimId, { reason: 'fraud' })
  t.match(r, { status: 200, body: { userId: 'bob', sequence: 2, status: 'cancelled' } })
  t.match(await revoke(url, id, b.body.claimId), { status: 200, body: r.body }, 'replayed')
  t.match(await revoke(url, id, randomUUID()), { status: 404, body: { code: 'CLAIM_NOT_FOUND' } })
  t.match(await http(`${url}/admin/campaigns/${id}/claims/${b.body.claimId}`, { method: 'DELETE' }), { status: 401 })
  t.match(await revoke(url, id, b.body.claimId, { reason: 'x', extra: 1 }), { status: 400, body: { code: 'VALIDATION' } })

  const admin = await http(`${url}/admin/campaigns/${id}`, { admin: true })
  t.match(admin.body, { issued: 4, returned: 3, remaining: 1, state: 'open' })

  // The worker persists claims and cancellations; the guard's counter agrees.
  const w = await startedWorker(t, env, 'lc-cancel', {}, 90_000)
  await waitUntil('drained', async () => { const s = await streamState(redis, config); return s.length === 0 && s.pending === 0 })
  const rows = await sql`SELECT user_id, sequence, cancelled_at IS NOT NULL AS cancelled, cancel_reason FROM claims WHERE campaign_id = ${id} ORDER BY sequence`
  t.same(rows.map((x) => [x.user_id, x.sequence, x.cancelled, x.cancel_reason]), [
    ['alice', 1, true, null], ['bob', 2, true, 'fraud'], ['carol', 3, true, null], ['alice', 4, false, null],
  ])
  const { active_claims: active } = one(await sql`SELECT active_claims FROM campaigns WHERE id = ${id}`)
  t.equal(active, 1)
  // Revoking a persisted claim: the owner comes from PostgreSQL.
  const persistedRevoke = await revoke(url, id, (await sql`SELECT claim_id FROM claims WHERE sequence = 4 AND campaign_id = ${id}`)[0]!.claim_id)
  t.match(persistedRevoke, { status: 200, body: { userId: 'alice', sequence: 4 } })
  await waitUntil('revoke persisted', async () => (await sql`SELECT active_claims FROM campaigns WHERE id = ${id}`)[0]!.active_claims === 0)
  t.same(await stopProcess(w), { code: 0, signal: null })
})

t.test('a closed campaign refuses cancellations with CAMPAIGN_ENDED', async (t) => {
  const { config, redis } = await testEnv(t, { RATE_LIMIT_IP_MAX: '0', RATE_LIMIT_USER_MAX: '0' })
  const { url } = await startApp(t, config)
  const keys = createKeys(config.KEY_PREFIX, config.STREAM_PARTITIONS)
  const id = await createCampaign(url, { name: 'closing', stock: 5, closesAt: new Date(Date.now() + 1500).toISOString() })
  const a = await claim(url, id, 'u1')
  const b = await claim(url, id, 'u2')
  t.equal((await cancel(url, id, b.body.claimId, 'u2')).status, 200)
  await new Promise((r) => setTimeout(r, 1600))
  t.match(await cancel(url, id, a.body.claimId, 'u1'), { status: 409, body: { code: 'CAMPAIGN_ENDED' } })
  t.match(await revoke(url, id, a.body.claimId), { status: 409, body: { code: 'CAMPAIGN_ENDED' } })
  t.equal((await cancel(url, id, b.body.claimId, 'u2')).status, 200, 'a replay still answers 200')
  t.equal(await redis.hget(keys.campaign(id), 'returned'), '1')
})

t.test('the same claim cancelled 50 times at once returns one unit', async (t) => {
  const { config, redis } = await testEnv(t, { RATE_LIMIT_IP_MAX: '0', RATE_LIMIT_USER_MAX: '0' })
  const { url } = await startApp(t, config)
  const keys = createKeys(config.KEY_PREFIX, config.STREAM_PARTITIONS)
  const id = await createCampaign(url, { name: 'fifty', stock: 3 })
  const a = await claim(url, id, 'x')
  const res = await Promise.all(Array.from({ length: 50 }, (_, i) => (i % 5 === 0 ? revoke(url, id, a.body.claimId) : cancel(url, id, a.body.claimId, 'x'))))
  t.same(res.map((r) => r.status), Array(50).fill(200))
  t.equal(new Set(res.map((r) => r.body.cancelledAt)).size, 1, 'every answer names the one cancellation')
  t.equal(await redis.hget(keys.campaign(id), 'returned'), '1')
  const entries = await redis.xrange(keys.streamOf(id), '-', '+')
  t.equal(entries.filter(([, f]) => rawEvent(f)?.kind === 'cancel').length, 1, 'one cancellation event in the stream')
  const pub = await http(`${url}/v1/campaigns/${id}`)
  t.equal(pub.body.remaining, 3)
})

t.test('an old users record (no count header) is cancelled in place and rewritten with its header', async (t) => {
  const { config, redis } = await testEnv(t, { RATE_LIMIT_IP_MAX: '0', RATE_LIMIT_USER_MAX: '0' })
  const { url } = await startApp(t, config)
  const keys = createKeys(config.KEY_PREFIX, config.STREAM_PARTITIONS)
  const id = await createCampaign(url, { name: 'old record', stock: 5, perUserLimit: 2 })
  const a = await claim(url, id, 'u')
  const b = await claim(url, id, 'u')
  const rec = (await redis.hget(keys.users(id), 'u'))!
  t.match(rec, /^2;/, 'written with the count header')
  const body = rec.slice(rec.indexOf(';') + 1)
  await redis.hset(keys.users(id), 'u', body) // the format before perf's header; every reader accepts it
  t.match(await cancel(url, id, b.body.claimId, 'u'), { status: 200, body: { sequence: 2 } })
  t.equal(await redis.hget(keys.users(id), 'u'), `1;${body}:c`, 'marked c, count 1 in a header')
  t.match(await claim(url, id, 'u'), { status: 201, body: { sequence: 3 } })
  t.match(await claim(url, id, 'u'), { status: 409, body: { code: 'ALREADY_CLAIMED', count: 2, sequences: [1, 3] } },
    'the at-limit answer lists the active claims only')
  t.match(await cancel(url, id, a.body.claimId, 'u'), { status: 200, body: { sequence: 1 } })
  t.match(await redis.hget(keys.users(id), 'u'), /^1;1:[^,]+:c,2:[^,]+:c,3:[^,]+\d$/, 'first entry marked in place')
})
