import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { Redis } from 'ioredis'
import { createKeys } from '../src/redis/keys.js'
import { createDb } from '../src/db/client.js'
import { reconcile } from '../src/reconcile/reconcile.js'
import { seedCampaign, claimIdOf } from '../bench/reconcile-seed.js'
import { testEnv, startApp, createCampaign, claim, http, userToken, freePort, ADMIN_TOKEN } from './helper.js'
import { startedWorker, streamState, waitUntil } from './worker-helper.js'
import { stopProcess } from './process.js'

/** Opens the campaign's live feed; resolves with the data of its 'end' event (or what came, if it closed). */
async function feedEnd(url: string, id: string): Promise<string> {
  const res = await fetch(`${url}/admin/campaigns/${id}/live`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    signal: AbortSignal.timeout(30_000) })
  let buf = ''
  const dec = new TextDecoder()
  try {
    for await (const chunk of res.body!) {
      buf += dec.decode(chunk as Uint8Array, { stream: true })
      const m = /event: end\ndata: (.*)\n/.exec(buf)
      if (m) return m[1]!
    }
  } catch { /* timed out */ }
  return buf
}

const archive = (url: string, id: string) => http(`${url}/admin/campaigns/${id}/archive`, { method: 'POST', admin: true })

t.test('archive: refused while running or pending, then answered from PostgreSQL', async (t) => {
  const { config, env, redis, sql } = await testEnv(t, {
    RATE_LIMIT_IP_MAX: '0', RATE_LIMIT_USER_MAX: '0', SOLD_OUT_CACHE_MS: '0', RECLAIM_IDLE_MS: '500', RECLAIM_INTERVAL_MS: '500', MAX_DELIVERIES: '100',
  })
  const { url } = await startApp(t, config)
  const keys = createKeys(config.KEY_PREFIX, config.STREAM_PARTITIONS)
  const id = await createCampaign(url, { name: 'ending', stock: 3 })
  const a = await claim(url, id, 'a')
  t.match(await archive(url, id), { status: 409, body: { code: 'CAMPAIGN_ACTIVE' } }, 'neither closed nor sold out')
  const b = await claim(url, id, 'b')
  await claim(url, id, 'c')
  t.match(await archive(url, id), { status: 409, body: { code: 'CLAIMS_PENDING', reason: /stream/ } }, 'sold out, but no worker has persisted anything')
  // The refused attempt did not end the campaign: a cancellation still returns its unit.
  t.match(await http(`${url}/v1/campaigns/${id}/claims/${b.body.claimId}`, { method: 'DELETE', token: userToken('b') }), { status: 200 })
  t.equal((await claim(url, id, 'd')).status, 201)
  // A cancellation whose event never reaches the database (deleted from the stream by hand): drift.
  t.equal((await http(`${url}/v1/campaigns/${id}/claims/${a.body.claimId}`, { method: 'DELETE', token: userToken('a') })).status, 200)
  const entries = await redis.xrange(keys.streamOf(id), '-', '+')
  const [lastId] = entries[entries.length - 1]!
  await redis.xdel(keys.streamOf(id), lastId)
  t.equal((await claim(url, id, 'e')).status, 201)

  const w = await startedWorker(t, env, 'lc-archive', {}, 90_000)
  // The database cannot take e's claim: as far as it knows, a still holds its unit (stock 3).
  await waitUntil('four rows', async () => (await sql`SELECT count(*)::int AS n FROM claims`)[0]!.n === 4)
  t.match(await archive(url, id), { status: 409, body: { code: 'CLAIMS_PENDING' } }, 'a claim the database refused so far is still pending')
  const db = createDb(config.DATABASE_URL)
  t.teardown(() => db.close())
  const check = await reconcile(redis, db.db, keys, { campaignId: id })
  t.equal(check.campaigns[0]!.classes.lifecycle.count, 1, 'reconcile reports the cancellation missing from the database')
  const fixed = await reconcile(redis, db.db, keys, { campaignId: id, fix: true })
  t.equal(fixed.exitCode, 0, '--fix re-enqueues its event')
  await waitUntil('event applied', async () => (await sql`SELECT cancelled_at FROM claims WHERE claim_id = ${a.body.claimId}`)[0]?.cancelled_at)
  await waitUntil('drained: the refused claim went in on redelivery', async () => { const s = await streamState(redis, config); return s.length === 0 && s.pending === 0 })

  const feed = feedEnd(url, id)
  await sleep(300)
  const done = await archive(url, id)
  t.match(done, { status: 200, body: { id, state: 'archived', issued: 5, active: 3, released: 2, persisted: 5 } })
  t.same(await redis.exists(keys.campaign(id), keys.users(id), keys.holds(id), keys.marks(id)), 0,
    'live state removed from Redis')
  t.match(await feed, /archived/, 'an open live feed ends on archive')
  t.match(await archive(url, id), { status: 200, body: { state: 'archived', archivedAt: done.body.archivedAt } }, 'repeating is harmless')

  t.match(await http(`${url}/v1/campaigns/${id}`), { status: 200, body: { id, state: 'archived', remaining: 0 } })
  t.match(await http(`${url}/admin/campaigns/${id}`, { admin: true }), { status: 200, body: { state: 'archived', issued: 5, returned: 2, persisted: 5, pending: 0 } })
  const me = await http(`${url}/v1/campaigns/${id}/claims/me`, { token: userToken('a') })
  t.match(me, { status: 200, body: { claims: [{ claimId: a.body.claimId, sequence: 1, status: 'persisted', state: 'cancelled' }] } }, 'claims/me from PostgreSQL')
  t.match(await claim(url, id, 'z'), { status: 403, body: { code: 'CLOSED' } })
  t.match(await http(`${url}/admin/campaigns/${id}/stock`, { method: 'POST', admin: true, body: { add: 1 } }),
    { status: 409, body: { code: 'CAMPAIGN_ENDED' } }, 'no stock for an archived campaign (never 503)')
  t.match(await http(`${url}/v1/campaigns/${id}/claims/${b.body.claimId}`, { method: 'DELETE', token: userToken('b') }), { status: 409, body: { code: 'CAMPAIGN_ENDED' } })
  const after = await reconcile(redis, db.db, keys, {})
  t.same(after.campaigns.map((c) => c.campaignId), [], 'reconcile skips archived campaigns')
  t.same(await stopProcess(w), { code: 0, signal: null })
})

t.test('archive of 100,000 persisted claims gives the memory back', async (t) => {
  // A private redis-server: used_memory of the shared one moves with everyone else's tests.
  const port = await freePort()
  const dir = mkdtempSync(path.join(tmpdir(), 'fcfs-archive-'))
  const server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' })
  t.teardown(async () => {
    if (server.exitCode === null) { server.kill('SIGTERM'); await once(server, 'exit') }
    rmSync(dir, { recursive: true, force: true })
  })
  const { config, sql } = await testEnv(t, { REDIS_URL: `redis://127.0.0.1:${port}`, RATE_LIMIT_IP_MAX: '0', RATE_LIMIT_USER_MAX: '0' })
  const redis = new Redis(config.REDIS_URL)
  t.teardown(() => redis.disconnect())
  await waitUntil('private redis up', async () => (await redis.ping()) === 'PONG')
  const { url } = await startApp(t, config)
  const keys = createKeys(config.KEY_PREFIX, config.STREAM_PARTITIONS)
  const usedMemory = async () => Number(/used_memory:(\d+)/.exec(await redis.info('memory'))![1])

  const baseline = await usedMemory()
  const id = await seedCampaign(redis, sql, keys, { claims: 100_000 })
  const seeded = await usedMemory()
  t.ok(seeded - baseline > 5_000_000, `the campaign takes ${((seeded - baseline) / 1e6).toFixed(1)} MB of Redis`)
  const res = await archive(url, id)
  t.match(res, { status: 200, body: { state: 'archived', issued: 100_000, active: 100_000, persisted: 100_000 } })
  // UNLINK hands the hash to a background thread: wait for it to be freed.
  let now = await usedMemory()
  for (let i = 0; i < 50 && now - baseline > 500_000; i++) { await sleep(100); now = await usedMemory() }
  t.ok(now - baseline < 500_000, `used_memory back within 0.5 MB of before the campaign (${now - baseline} B above)`)
  const me = await http(`${url}/v1/campaigns/${id}/claims/me`, { token: userToken('user-77') })
  t.same(me.body.claims.map((c: { claimId: string; sequence: number; status: string }) => [c.claimId, c.sequence, c.status]), [[claimIdOf(77), 77, 'persisted']])
})
