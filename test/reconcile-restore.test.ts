/**
 * Redis loses everything (this test's keys deleted: the shared Redis is never flushed) after the
 * worker persisted 1,000 claims. The claim route answers 503; reconcile --fix, run as the real script, rebuilds the
 * campaign while claims keep firing; claims continue from 1,001 and stop at the stock exactly.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { testEnv, startApp, createCampaign, claim, deleteKeys, http, ROOT, countBy, type Res } from './helper.js'
import { drained, keysOf, persistByHand, reconcileIn, rowsOf, runReconcile, startWorker, streamEntries } from './reconcile-helper.js'
import { entryArgs, stopProcess } from './process.js'

t.test('restore after Redis lost everything, with claims firing during the restore', async (t) => {
  const env = await testEnv(t, { RATE_LIMIT_IP_MAX: '0', RATE_LIMIT_USER_MAX: '0' })
  const { url } = await startApp(t, env.config)
  const keys = keysOf(env)
  const { redis, sql } = env
  const STOCK = 1500
  const id = await createCampaign(url, { name: 'flush', stock: STOCK, perUserLimit: 2 })

  const first: Res[] = []
  for (let i = 0; i < 1000; i += 100) {
    first.push(...await Promise.all(Array.from({ length: 100 }, (_, j) => claim(url, id, `old${i + j}`))))
  }
  t.same(countBy(first, (r) => r.status), { 201: 1000 })
  const worker = await startWorker(t, env, 'w-before')
  await drained(env, id, 1000)
  await stopProcess(worker)

  await deleteKeys(redis, `${env.config.KEY_PREFIX}:*`)
  const down = await claim(url, id, 'someone')
  t.equal(down.status, 503)
  t.equal(down.body.code, 'CAMPAIGN_UNAVAILABLE')
  t.equal(await redis.exists(keys.campaign(id)), 0, 'the claim route created no counter')
  t.equal((await http(`${url}/admin/campaigns/${id}`, { admin: true })).status, 503)

  // Every old user asks twice more (limit 2: at most one can succeed), 600 new users once each:
  // 1,600 possible claims for 500 places. A 503 is retried until the campaign is back.
  const queue = [...Array.from({ length: 1000 }, (_, i) => [`old${i}`, `old${i}`]).flat(),
    ...Array.from({ length: 600 }, (_, i) => `new${i}`)]
  const answers: Res[] = []
  let unavailable = 0
  let fixDone = false
  const deadline = Date.now() + 60_000
  async function fire() {
    for (let user = queue.shift(); user !== undefined; user = queue.shift()) {
      for (;;) {
        const r = await claim(url, id, user)
        if (r.status !== 503 || Date.now() > deadline) { answers.push(r); break }
        unavailable++
        await new Promise((res) => setTimeout(res, fixDone ? 0 : 2))
      }
    }
  }
  const firing = Promise.all(Array.from({ length: 16 }, fire))
  const fix = await new Promise<{ code: number | null; out: string }>((resolve, reject) => {
    const child = spawn(process.execPath, [...entryArgs('scripts/reconcile'), '--campaign', id, '--fix', '--page-size', '50'], {
      cwd: ROOT, env: { ...process.env, ...env.env }, stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    child.stdout.on('data', (d) => { out += d })
    child.stderr.on('data', (d) => { out += d })
    child.on('error', reject)
    child.on('close', (code) => { fixDone = true; resolve({ code, out }) })
  })
  await firing
  t.equal(fix.code, 0, `reconcile --fix exits 0${fix.code === 0 ? '' : `: ${fix.out}`}`)
  t.match(fix.out, /live state missing\s+1\s+1/)
  t.ok(unavailable > 0, `claims were firing before the restore finished (${unavailable} answered 503)`)

  const byStatus = countBy(answers, (r) => r.status)
  t.equal(byStatus[201], STOCK - 1000, 'exactly the remaining stock was issued')
  t.equal((byStatus[201] ?? 0) + (byStatus[409] ?? 0) + (byStatus[410] ?? 0), answers.length,
    'every claim got 201, 409 or 410 in the end')
  const seqs = answers.filter((r) => r.status === 201).map((r) => r.body.sequence as number).sort((a, b) => a - b)
  t.same(seqs, Array.from({ length: STOCK - 1000 }, (_, i) => 1001 + i),
    'claims continued from 1,001 to the stock, each sequence once')
  t.equal(await redis.hget(keys.campaign(id), 'issued'), String(STOCK))
  t.equal((await streamEntries(redis, keys, id)).length, STOCK - 1000)

  const again = await startWorker(t, env, 'w-after')
  await drained(env, id, STOCK)
  await stopProcess(again)
  const rows = await rowsOf(sql, id)
  t.same(rows.map((r) => r.sequence), Array.from({ length: STOCK }, (_, i) => i + 1), 'rows 1..stock, each once')
  t.equal((await sql`SELECT count(*)::int AS n FROM failed_claims`)[0]!.n, 0, 'the worker refused nothing')
  const perUser = Object.values(countBy(rows, (r) => r.user_id))
  t.equal(Math.max(...perUser), 2, 'no user over the limit of 2')
  const check = await reconcileIn(env, { campaignId: id })
  t.equal(check.exitCode, 0, 'Redis and the database agree afterwards')
})

t.test('failover to a replica that missed writes: --fix while claims fire never hands a persisted sequence out again', async (t) => {
  const env = await testEnv(t, { RATE_LIMIT_IP_MAX: '0', RATE_LIMIT_USER_MAX: '0' })
  const { url } = await startApp(t, env.config)
  const keys = keysOf(env)
  const { redis, sql } = env
  const id = await createCampaign(url, { name: 'failover', stock: 3000 })
  const first: Res[] = []
  for (let i = 0; i < 1000; i += 100) {
    first.push(...await Promise.all(Array.from({ length: 100 }, (_, j) => claim(url, id, `old${i + j}`))))
  }
  await persistByHand(redis, sql, keys, id)
  // The replica never saw the last 100 claims: counter back at 900, their users' records gone.
  const lostUsers = first.filter((r) => r.body.sequence > 900).map((r) => r.body.userId as string)
  await redis.hdel(keys.users(id), ...lostUsers)
  await redis.hset(keys.campaign(id), 'issued', 900)

  // Claims keep coming, slowly enough that some land before, some during and some after the repair
  // (how many of each is up to the machine; the assertions hold for any split).
  const queue = [...lostUsers, ...Array.from({ length: 300 }, (_, i) => `new${i}`)]
  const answers: Res[] = []
  let fixDone = false
  async function fire() {
    for (let user = queue.shift(); user !== undefined && !fixDone; user = queue.shift()) {
      answers.push(await claim(url, id, user))
      await new Promise((res) => setTimeout(res, 40))
    }
  }
  const firing = Promise.all(Array.from({ length: 2 }, fire))
  const fix = await runReconcile(env.env, ['--campaign', id, '--fix', '--json', '--page-size', '10'])
  fixDone = true
  await firing
  const after = await Promise.all(['late1', 'late2', 'late3'].map((u) => claim(url, id, u)))

  const issuedSeqs = [...answers, ...after].filter((r) => r.status === 201).map((r) => r.body.sequence as number)
  t.equal(new Set(issuedSeqs).size, issuedSeqs.length, 'no sequence handed out twice by the claim path')
  const reused = issuedSeqs.filter((s) => s <= 1000).length
  const top = Math.max(...answers.filter((r) => r.status === 201).map((r) => r.body.sequence as number), 1000)
  t.same(after.map((r) => r.body.sequence).sort(), [top + 1, top + 2, top + 3],
    'after the fix, claims continue above every persisted sequence')
  t.equal(fix.code, reused > 0 ? 1 : 0, `exit code says whether claims re-took persisted sequences before the fix (${reused} did)`)

  const check = await reconcileIn(env, { campaignId: id })
  const c = check.campaigns[0]!
  t.equal(c.classes.conflicts.count, reused,
    'every sequence re-issued before the raise is reported as a conflict, no more')
  t.equal(c.classes.redisLost.count, 0, 'every other lost record restored')
  t.equal(c.classes.lost.count, 0)
  t.equal(c.classes.counters.count, 0)
  for (const u of lostUsers) {
    const record = await redis.hget(keys.users(id), u)
    const original = first.find((r) => r.body.userId === u)!.body.claimId as string
    const own = first.find((r) => r.body.userId === u)!.body.sequence as number
    if (!issuedSeqs.includes(own)) t.ok(record?.includes(original), `record of ${u} restored`)
  }
})
