/**
 * Durable acknowledgements on one Redis master with one replica (private redis-server processes),
 * CLAIM_DURABILITY=replica: every 201 is already on the replica when it is answered; with the replica frozen
 * (SIGSTOP) no claim is answered 201, a claim that ran is answered 503 NOT_DURABLE (outcome unknown) and
 * later replayed by its Idempotency-Key once durable, any 503 BACKEND_UNAVAILABLE holds nothing, and the
 * worker persists nothing the replica lacks; with replication cut, claims are refused before the script and
 * /readyz says why.
 */
import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import { testEnv, startApp, createCampaign, claim, http, userToken, type Res } from './helper.js'
import { startPrivateRedis } from './private-redis.js'
import { createKeys } from '../src/redis/keys.js'
import { loadConfig } from '../src/config.js'
import { parseUserRecord } from '../src/redis/users-record.js'
import { startedWorker, waitUntil, fetchJson, rowCount } from './worker-helper.js'
import { stopProcess } from './process.js'

const master = await startPrivateRedis(t)
const replica = await startPrivateRedis(t, ['--replicaof', '127.0.0.1', String(master.port)])
const replicaConn = new Redis({ port: replica.port, host: '127.0.0.1', maxRetriesPerRequest: 1, lazyConnect: true })
replicaConn.on('error', () => {})
t.teardown(() => replicaConn.disconnect())
await waitUntil('the replica is in sync', async () => /master_link_status:up/.test(await replica.admin.info('replication')))

const { env, sql } = await testEnv(t, { REDIS_URL: master.url, CLAIM_DURABILITY: 'replica',
  CLAIM_DURABILITY_TIMEOUT_MS: '300', RATE_LIMIT_IP_MAX: '0', RATE_LIMIT_USER_MAX: '0',
  WORKER_BLOCK_MS: '200', RECLAIM_IDLE_MS: '1000', RECLAIM_INTERVAL_MS: '500' })
const config = loadConfig(env)
const keys = createKeys(config.KEY_PREFIX, config.STREAM_PARTITIONS)
const { url } = await startApp(t, config)
await waitUntil('/readyz answers 200', async () => (await fetchJson(`${url}/readyz`)).status === 200)

const holds = async (conn: Redis, id: string, user: string) =>
  parseUserRecord(await conn.hget(keys.users(id), user)).claims.map((c) => c.claimId)

t.test('concurrent claims: exact counts, every 201 already on the replica', async (t) => {
  const worker = await startedWorker(t, env, 'durable-1')
  const id = await createCampaign(url, { name: 'durable', stock: 300 })
  const users = Array.from({ length: 400 }, (_, i) => `u${i}`)
  const answers: [string, Res][] = []
  let next = 0
  await Promise.all(Array.from({ length: 40 }, async () => {
    while (next < users.length) {
      const u = users[next++]!
      answers.push([u, await claim(url, id, u)])
    }
  }))
  const won = answers.filter(([, r]) => r.status === 201)
  t.equal(won.length, 300, '300 answered 201')
  t.equal(answers.filter(([, r]) => r.status === 410).length, 100, '100 answered 410 SOLD_OUT')
  t.equal(await master.admin.hget(keys.campaign(id), 'issued'), '300', 'the master issued 300')
  t.same(new Set(won.map(([, r]) => r.body.sequence)).size, 300, 'no sequence answered twice')
  // Read right after the answers: WAIT confirmed them, so the replica holds every one already.
  let onReplica = 0
  for (const [u, r] of won) if ((await holds(replica.admin, id, u)).includes(r.body.claimId)) onReplica++
  t.equal(onReplica, 300, 'every 201 was on the replica when it was answered')
  await waitUntil('the worker persisted all 300', async () => (await rowCount(sql, id)) === 300)
  t.same(await stopProcess(worker), { code: 0, signal: null })
})

t.test('cancel and confirm are answered once on the replica, and not while it is frozen', async (t) => {
  const id = await createCampaign(url, { name: 'holds', stock: 10, holdSeconds: 600 })
  const held = await Promise.all(['h1', 'h2', 'h3'].map((u) => claim(url, id, u)))
  t.same(held.map((r) => r.status), [201, 201, 201])
  const path = (i: number) => `${url}/v1/campaigns/${id}/claims/${held[i]!.body.claimId}`
  const cancel = await http(path(0), { method: 'DELETE', token: userToken('h1') })
  t.equal(cancel.status, 200, 'cancel answered')
  const confirm = await http(`${path(1)}/confirm`, { method: 'POST', token: userToken('h2') })
  t.equal(confirm.status, 200, 'confirm answered')
  t.ok(await replica.admin.hexists(keys.marks(id), held[0]!.body.claimId), 'the cancel was on the replica when answered')
  t.ok(await replica.admin.hexists(keys.marks(id), held[1]!.body.claimId), 'the confirm was on the replica when answered')

  replica.child.kill('SIGSTOP')
  t.teardown(() => { replica.child.kill('SIGCONT') })
  const frozen = await http(path(2), { method: 'DELETE', token: userToken('h3') })
  t.equal(frozen.status, 503, 'a cancel while the replica is frozen is not answered 200')
  t.ok(['NOT_DURABLE', 'BACKEND_UNAVAILABLE'].includes(frozen.body.code), frozen.body.code)
  replica.child.kill('SIGCONT')
  await waitUntil('the cancel is answered again', async () =>
    (await http(path(2), { method: 'DELETE', token: userToken('h3') })).status === 200)
})

t.test('replica frozen: never 201; NOT_DURABLE replays once durable; BACKEND_UNAVAILABLE holds nothing', async (t) => {
  const worker = await startedWorker(t, env, 'durable-2')
  const id = await createCampaign(url, { name: 'frozen', stock: 100_000 })
  t.equal((await claim(url, id, 'warm')).status, 201, 'a claim before the freeze is answered 201')
  await waitUntil('the warm claim is persisted', async () => (await rowCount(sql, id)) === 1)

  replica.child.kill('SIGSTOP')
  const answers: { user: string; key: string; res: Res; ms: number }[] = []
  const end = Date.now() + 2000
  let n = 0
  await Promise.all(Array.from({ length: 10 }, async () => {
    while (Date.now() < end) {
      const user = `f${n++}`
      const key = `k-${user}`
      const start = Date.now()
      const res = await claim(url, id, user, { 'idempotency-key': key })
      answers.push({ user, key, res, ms: Date.now() - start })
    }
  }))
  const codes = new Set(answers.map((a) => `${a.res.status} ${a.res.body?.code}`))
  t.same([...codes].sort(), ['503 BACKEND_UNAVAILABLE', '503 NOT_DURABLE'].filter((c) => codes.has(c)),
    `only 503s while the replica is frozen (${[...codes].join(', ')})`)
  t.notOk(answers.some((a) => a.res.status === 201), 'no claim answered 201 unconfirmed')
  const notDurable = answers.filter((a) => a.res.body?.code === 'NOT_DURABLE')
  const refused = answers.filter((a) => a.res.body?.code === 'BACKEND_UNAVAILABLE')
  t.ok(notDurable.length > 0, `claims that ran were answered NOT_DURABLE (${notDurable.length})`)
  t.ok(refused.length > 0, `later claims were refused before the script (${refused.length})`)
  t.ok(notDurable.every((a) => Number(a.res.headers.get('retry-after')) >= 1 && a.res.body.claimId &&
    /outcome unknown/.test(a.res.body.message)), 'NOT_DURABLE says the outcome is unknown, names the claim, Retry-After')
  t.ok(Math.max(...answers.map((a) => a.ms)) < 5000, `answers bounded (slowest ${Math.max(...answers.map((a) => a.ms))} ms)`)
  for (const a of refused) t.same(await holds(master.admin, id, a.user), [], `${a.user} (BACKEND_UNAVAILABLE) holds nothing`)
  const ready = await fetchJson(`${url}/readyz`)
  t.equal(ready.status, 503, '/readyz 503 while the master cannot confirm')
  t.match(ready.text, /did not confirm writes on 1 replica/, '/readyz says why')
  await sleep(1500)
  t.equal(await rowCount(sql, id), 1, 'the worker persisted nothing the replica lacks')

  replica.child.kill('SIGCONT')
  await waitUntil('claims are taken again', async () => (await claim(url, id, `after-${Date.now()}`)).status === 201)
  for (const a of notDurable) {
    const again = await claim(url, id, a.user, { 'idempotency-key': a.key })
    t.equal(again.status, 201, `${a.user}: the same key replays the claim once durable`)
    t.equal(again.headers.get('idempotent-replayed'), 'true')
    t.equal(again.body.claimId, a.res.body.claimId, `${a.user}: the claim NOT_DURABLE named`)
  }
  const issued = Number(await master.admin.hget(keys.campaign(id), 'issued'))
  await waitUntil('the worker persisted every claim once it was on the replica', async () =>
    (await rowCount(sql, id)) === issued, 30_000)
  const [dups] = await sql`SELECT count(*)::int AS n FROM (SELECT sequence FROM claims WHERE campaign_id = ${id}
    GROUP BY sequence HAVING count(*) > 1) d`
  t.equal(dups!.n, 0, 'no sequence persisted twice')
  t.same(await stopProcess(worker), { code: 0, signal: null })
})

t.test('replication cut: refused before the script, /readyz says why', async (t) => {
  const id = await createCampaign(url, { name: 'cut', stock: 100 })
  t.equal((await claim(url, id, 'before')).status, 201)
  await replica.admin.call('REPLICAOF', 'NO', 'ONE')
  await waitUntil('/readyz reports the missing replica', async () =>
    /0 online replica\(s\), CLAIM_MIN_REPLICAS is 1/.test((await fetchJson(`${url}/readyz`)).text))
  const res = await Promise.all(Array.from({ length: 20 }, (_, i) => claim(url, id, `cut${i}`)))
  t.same([...new Set(res.map((r) => `${r.status} ${r.body.code}`))], ['503 BACKEND_UNAVAILABLE'])
  t.match(res[0]!.body.message, /nothing was written/)
  t.equal(await master.admin.hget(keys.campaign(id), 'issued'), '1', 'no script ran: issued unchanged')
  for (let i = 0; i < 20; i++) t.same(await holds(master.admin, id, `cut${i}`), [], `cut${i} holds nothing`)
  await replica.admin.call('REPLICAOF', '127.0.0.1', String(master.port))
  await waitUntil('claims are taken again once the replica is back', async () =>
    (await claim(url, id, `back-${Date.now()}`)).status === 201, 30_000)
})
