/**
 * A 503 is the truth (issue 19): a claim answered 503 is never issued later. Redis is frozen (SIGSTOP) in
 * the middle of a burst, so claims sit written in its socket past their bound and are answered 503; when
 * it resumes it runs them all, and claim.lua's deadline makes every one of them a no-op. A script Redis ran
 * just before the freeze, its reply not yet sent, was issued: its 503 says the outcome is unknown and names
 * the claim, which the user then finds.
 */
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { testEnv, startApp, createCampaign, claim, http, userToken, type Res } from './helper.js'
import { startPrivateRedis } from './private-redis.js'
import { trafficProxy } from './tcp-proxy.js'
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

t.test('a claim Redis ran but whose reply never came in time: 503 naming the claim, which the user then finds', async (t) => {
  const r = await startPrivateRedis(t)
  const proxy = await trafficProxy(t, r.port)
  const { env } = await testEnv(t, { REDIS_URL: `redis://127.0.0.1:${proxy.port}`, REDIS_COMMAND_TIMEOUT_MS: '500', RATE_LIMIT_IP_MAX: '0' })
  const { url } = await startApp(t, loadConfig(env))
  const id = await createCampaign(url, { name: 'withheld', stock: 10, perUserLimit: 1 })
  const keys = createKeys(env.KEY_PREFIX!, loadConfig(env).STREAM_PARTITIONS)

  proxy.withholdReplies()
  const answer = await claim(url, id, 'withheld')
  proxy.release()
  t.equal(answer.status, 503)
  t.equal(answer.body.code, 'BACKEND_UNAVAILABLE')
  t.type(answer.body.claimId, 'string', 'the 503 names the claim whose outcome is unknown')
  t.match(answer.body.message, /just before it stopped answering/)
  t.match(answer.body.message, `/v1/campaigns/${id}/claims/me`, 'and says where to learn it')
  // Redis did run it: the unit is the user's, under the id the 503 named.
  const mine = parseUserRecord(await r.admin.hget(keys.users(id), 'withheld')).claims
  t.same(mine.map((c) => c.claimId), [answer.body.claimId], 'issued, under the named id')
  const me = await http(`${url}/v1/campaigns/${id}/claims/me`, { token: userToken('withheld') })
  t.same(me.body.claims.map((c: { claimId: string }) => c.claimId), [answer.body.claimId], 'claims/me lists it')
  const again = await claim(url, id, 'withheld')
  t.equal(again.status, 409, 'a retry learns it too: the user already holds the unit')
  t.equal(await r.admin.hget(keys.campaign(id), 'issued'), '1', 'one unit issued, not two')
})

t.test('Redis frozen mid-burst: a user answered 503 holds nothing, or only the claim its 503 named, issued before the freeze', async (t) => {
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
  // Two true 503s: the script answered it was too late (nothing issued), or no answer came (unknown, named).
  const said = (u: string) => {
    const b = results.get(u)!.body
    if (b.claimId === undefined && /nothing was issued/.test(b.message)) return 'nothing issued'
    return typeof b.claimId === 'string' && b.message.includes(b.claimId) && b.message.includes('claims/me')
      ? 'unknown' : `unexplained: ${b.message}`
  }
  t.same(refused.filter((u) => said(u).startsWith('unexplained')).map((u) => [u, said(u)]), [],
    'every 503 says nothing was issued, or names its claim and how to learn its outcome')

  // Let Redis work off its socket buffers, then read every record.
  await sleep(500)
  const records = await r.admin.hgetall(keys.users(id))
  // Issued, answered 503: only a script Redis ran before the freeze, and only the claim its 503 named.
  const held = refused.filter((u) => records[u] !== undefined)
  t.same(held.filter((u) => said(u) !== 'unknown'), [], 'a 503 that said nothing was issued hides no claim')
  const issuedLate = held.filter((u) => {
    const mine = parseUserRecord(records[u]).claims
    return mine.length !== 1 || mine[0]!.claimId !== results.get(u)!.body.claimId || mine[0]!.claimedAt > frozeAt + 50
  })
  t.same(issuedLate.map((u) => [u, records[u], frozeAt]), [], 'no claim answered 503 was issued after the freeze')
  if (held.length > 0) {
    const me = await http(`${url}/v1/campaigns/${id}/claims/me`, { token: userToken(held[0]!) })
    t.same(me.body.claims.map((c: { claimId: string }) => c.claimId), [results.get(held[0]!)!.body.claimId],
      'a user whose 503 hid an issued claim finds it under the id the 503 named')
  }
  const wrong = ok.filter((u) => {
    const mine = parseUserRecord(records[u]).claims.map((c) => c.claimId)
    return mine.length !== 1 || mine[0] !== results.get(u)!.body.claimId
  })
  t.same(wrong, [], 'every user answered 201 holds exactly the claim it was answered')
  t.equal(Number(await r.admin.hget(keys.campaign(id), 'issued')), ok.length, 'issued = the 201s')
  // A user answered 503 who holds nothing can claim now.
  const retry = await claim(url, id, refused.find((u) => records[u] === undefined)!)
  t.equal(retry.status, 201, 'a refused user claims on retry (no 409)')
})
