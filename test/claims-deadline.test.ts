/**
 * A 503 is the truth (issue 19): a claim answered 503 is never issued later. Redis is frozen (SIGSTOP) in
 * the middle of a burst, so claims sit written in its socket past their bound and are answered 503; when
 * it resumes it runs them all, and claim.lua's deadline makes every one of them a no-op.
 */
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { testEnv, startApp, createCampaign, claim, type Res } from './helper.js'
import { startPrivateRedis } from './private-redis.js'
import { createKeys } from '../src/redis/keys.js'
import { loadConfig } from '../src/config.js'
import { runClaim, claimDeadline } from '../src/claims/claim-script.js'
import { defineScripts } from '../src/redis/scripts.js'
import { parseUserRecord } from '../src/redis/users-record.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

t.test('a script past its deadline writes nothing; a re-sent one still finds its own claim', async (t) => {
  const r = await startPrivateRedis(t)
  const { env } = await testEnv(t, { REDIS_URL: r.url })
  const { app, url } = await startApp(t, loadConfig(env))
  void app
  const id = await createCampaign(url, { name: 'deadline', stock: 10, perUserLimit: 1 })
  const keys = createKeys(env.KEY_PREFIX!, loadConfig(env).STREAM_PARTITIONS)
  defineScripts(r.admin)
  const base = { campaignId: id, userId: 'late', idempotencyTtlS: 60, userMax: 5, userWindowMs: 60_000 }
  const late = await runClaim(r.admin, keys, { ...base, claimId: randomUUID(), deadlineMs: Date.now() - 1 })
  t.same(late.outcome, { kind: 'too_late' })
  t.equal(await r.admin.hget(keys.campaign(id), 'issued'), '0', 'nothing issued')
  t.equal(await r.admin.exists(keys.userRate(id, 'late')), 0, 'not even the rate counter was written')
  t.equal(await r.admin.xlen(keys.streamOf(id)), 0, 'no stream entry')

  const claimId = randomUUID()
  const first = await runClaim(r.admin, keys, { ...base, claimId, deadlineMs: claimDeadline(Date.now(), 1000) })
  t.equal(first.outcome.kind, 'issued')
  const resent = await runClaim(r.admin, keys, { ...base, claimId, deadlineMs: Date.now() - 1 })
  t.same(resent.outcome, first.outcome, 'a late re-send of an issued claim answers it')
  t.equal(claimDeadline(1000, 1000), 1800, 'the margin is 200 ms')
  t.equal(claimDeadline(1000, 100), 1050, 'a short timeout keeps half for the script')
})

t.test('Redis frozen mid-burst: every user answered 503 holds nothing afterwards', async (t) => {
  const r = await startPrivateRedis(t)
  const { env, sql } = await testEnv(t, { REDIS_URL: r.url, REDIS_COMMAND_TIMEOUT_MS: '1000', RATE_LIMIT_IP_MAX: '0' })
  void sql
  const { url } = await startApp(t, loadConfig(env))
  const id = await createCampaign(url, { name: 'frozen', stock: 100_000, perUserLimit: 1 })
  const keys = createKeys(env.KEY_PREFIX!, loadConfig(env).STREAM_PARTITIONS)

  const answers = new Map<string, Promise<Res>>()
  let n = 0
  const burst = (async () => {
    const end = Date.now() + 3000
    while (Date.now() < end) {
      for (let i = 0; i < 10; i++) {
        const user = `u${++n}`
        answers.set(user, claim(url, id, user))
      }
      await sleep(20)
    }
  })()
  await sleep(300)
  r.child.kill('SIGSTOP')
  const frozeAt = Date.now()
  await sleep(2000)
  r.child.kill('SIGCONT')
  await burst

  const results = new Map<string, Res>()
  for (const [u, p] of answers) results.set(u, await p)
  const by = (s: number) => [...results].filter(([, x]) => x.status === s).map(([u]) => u)
  const ok = by(201)
  const refused = by(503)
  t.ok(ok.length > 0, `${ok.length} claims issued`)
  t.ok(refused.length > 0, `${refused.length} claims answered 503 while Redis was frozen`)
  t.equal(ok.length + refused.length, results.size, 'only 201 and 503')
  t.same(new Set(refused.map((u) => results.get(u)!.body.code)), new Set(['BACKEND_UNAVAILABLE']), '503 codes')

  // Let Redis work off its socket buffers, then read every record.
  await sleep(500)
  const records = await r.admin.hgetall(keys.users(id))
  const ghosts = refused.filter((u) => records[u] !== undefined)
  t.same(ghosts.map((u) => [u, records[u], frozeAt]), [], 'no user answered 503 holds a claim')
  const wrong = ok.filter((u) => {
    const mine = parseUserRecord(records[u]).claims.map((c) => c.claimId)
    return mine.length !== 1 || mine[0] !== results.get(u)!.body.claimId
  })
  t.same(wrong, [], 'every user answered 201 holds exactly the claim it was answered')
  t.equal(Number(await r.admin.hget(keys.campaign(id), 'issued')), ok.length, 'issued = the 201s')
  // A user answered 503 can claim now: nothing of theirs was issued.
  const retry = await claim(url, id, refused[0]!)
  t.equal(retry.status, 201, 'a refused user claims on retry (no 409)')
})
