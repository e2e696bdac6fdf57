/**
 * Redis loses everything (this test's keys deleted: the shared Redis is never flushed) after 1,000
 * persisted claims. The claim route answers 503; reconcile --fix, run as the real script, rebuilds the
 * campaign while claims keep firing; claims continue from 1,001 and stop at the stock exactly.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import path from 'node:path'
import { testEnv, startApp, createCampaign, claim, deleteKeys, http, ROOT, countBy, type Res } from './helper.js'
import { keysOf, persistByHand, reconcileIn, rowsOf, streamEntries } from './reconcile-helper.js'

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
  await persistByHand(redis, sql, keys, id)
  t.equal((await rowsOf(sql, id)).length, 1000)

  await deleteKeys(redis, `${env.config.KEY_PREFIX}:*`)
  const down = await claim(url, id, 'someone')
  t.equal(down.status, 503)
  t.equal(down.body.code, 'CAMPAIGN_UNAVAILABLE')
  t.equal(await redis.exists(keys.campaign(id)), 0, 'the claim route created no counter')
  t.equal((await http(`${url}/admin/campaigns/${id}`, { admin: true })).status, 503)

  // Every old user asks twice more (limit 2: at most one can succeed), 600 new users once each:
  // 1,600 possible claims for 500 places. A 503 is retried until the campaign is back.
  const queue = [...Array.from({ length: 1000 }, (_, i) => [`old${i}`, `old${i}`]).flat(), ...Array.from({ length: 600 }, (_, i) => `new${i}`)]
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
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'scripts/reconcile.ts'), '--campaign', id, '--fix', '--page-size', '50'], {
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
  t.equal((byStatus[201] ?? 0) + (byStatus[409] ?? 0) + (byStatus[410] ?? 0), answers.length, 'every claim got 201, 409 or 410 in the end')
  const seqs = answers.filter((r) => r.status === 201).map((r) => r.body.sequence as number).sort((a, b) => a - b)
  t.same(seqs, Array.from({ length: STOCK - 1000 }, (_, i) => 1001 + i), 'claims continued from 1,001 to the stock, each sequence once')
  t.equal(await redis.hget(keys.campaign(id), 'issued'), String(STOCK))
  t.equal((await streamEntries(redis, keys, id)).length, STOCK - 1000)

  await persistByHand(redis, sql, keys, id)
  const rows = await rowsOf(sql, id)
  t.same(rows.map((r) => r.sequence), Array.from({ length: STOCK }, (_, i) => i + 1), 'rows 1..stock, each once')
  const perUser = Object.values(countBy(rows, (r) => r.user_id))
  t.equal(Math.max(...perUser), 2, 'no user over the limit of 2')
  const check = await reconcileIn(env, { campaignId: id })
  t.equal(check.exitCode, 0, 'Redis and the database agree afterwards')
})
