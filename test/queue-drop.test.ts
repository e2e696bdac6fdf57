/**
 * Issue 21's drop: 1,500 users join a waiting room (1,000 before the opening, 500 after), stock 300, holds
 * of 3 s, two API instances (the build, spawned) and the worker. Users act by their position: a tenth never
 * claim (their admissions expire), some let their holds lapse or cancel (units come back to the waiting
 * list), the rest confirm. Everything is then checked against Redis, PostgreSQL and the revealed draw.
 */
import { createHash } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { createKeys } from '../src/redis/keys.js'
import { parseLog } from '../src/queue/store.js'
import { testEnv, spawnServer, freePort, createCampaign, claim, http, userToken, countBy } from './helper.js'
import { startedWorker, waitUntil } from './worker-helper.js'
import { reconcileIn } from './reconcile-helper.js'

const sha = (s: string) => createHash('sha256').update(s).digest('hex')

async function pool<T>(items: T[], concurrency: number, fn: (x: T, i: number) => Promise<void>): Promise<void> {
  let next = 0
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < items.length) { const i = next++; await fn(items[i]!, i) }
  }))
}

type Behaviour = 'sleep' | 'lapse' | 'cancel' | 'confirm'
// By position: deterministic, and spread over the whole line (including users admitted for returned units).
const behaviour = (p: number): Behaviour => (p % 10 === 3 ? 'sleep' : p % 7 === 0 ? 'lapse' : p % 11 === 0 ? 'cancel'
  : 'confirm')

t.test('drop: 1,500 users, stock 300, two instances, the worker', async (t) => {
  const env = await testEnv(t, { RATE_LIMIT_USER_MAX: '0', RATE_LIMIT_IP_MAX: '0', QUEUE_TICK_MS: '50',
    SOLD_OUT_CACHE_MS: '0' })
  const { config, redis, sql } = env
  const keys = createKeys(config.KEY_PREFIX, config.STREAM_PARTITIONS)
  const [a, b] = await Promise.all([spawnServer(t, env.env, await freePort()),
    spawnServer(t, env.env, await freePort())])
  const urls = [a.url, b.url]
  const url = (i: number) => urls[i % 2]!
  await startedWorker(t, env.env, 'queue-drop', { HOLD_SWEEP_MS: '100' }, 90_000)

  const opensAt = Date.now() + 8000
  const id = await createCampaign(a.url, { name: 'drop', stock: 300, holdSeconds: 3,
    opensAt: new Date(opensAt).toISOString(), queue: { order: 'shuffle', admitPerSecond: 2000, admitSeconds: 4 } })
  const seedHash = (await http(`${a.url}/admin/campaigns/${id}`, { admin: true })).body.queue.seedHash

  // 1,000 join before the opening, over both instances.
  const users = Array.from({ length: 1500 }, (_, i) => `user-${i}`)
  const ticket = new Map<string, string>()
  const joinStatus: number[] = []
  await pool(users.slice(0, 1000), 40, async (u, i) => {
    const r = await http(`${url(i)}/v1/campaigns/${id}/queue`, { method: 'POST', token: userToken(u) })
    joinStatus.push(r.status)
    if (r.status === 201 && r.body.state === 'pre_queue' && r.body.position === null) ticket.set(u, r.body.ticket)
  })
  t.ok(Date.now() < opensAt, 'the pre-queue filled before the opening')
  t.same(countBy(joinStatus, (s) => s), { 201: 1000 }, '1,000 joins: 201 each, pre-queue, no position')
  t.equal(new Set(ticket.values()).size, 1000, '1,000 distinct tickets')
  const repeat = await http(`${b.url}/v1/campaigns/${id}/queue`, { method: 'POST', token: userToken('user-0') })
  t.match(repeat, { status: 200, body: { ticket: ticket.get('user-0'), position: null, state: 'pre_queue' } })
  t.match(await claim(a.url, id, 'user-1'), { status: 403, body: { code: 'NOT_OPEN' } })
  t.match(await http(`${b.url}/v1/campaigns/${id}/queue`), { body: { state: 'pre_queue', length: 1000, seed: null,
    seedHash } })

  await sleep(Math.max(0, opensAt - Date.now() + 20))
  // The draw, recomputed from the revealed seed: positions 1..1000 by sha256(seed:ticket) ascending.
  await waitUntil('draw published', async () => (await http(`${a.url}/v1/campaigns/${id}/queue/draw`)).status === 200)
  const draw = (await http(`${a.url}/v1/campaigns/${id}/queue/draw`)).body
  t.equal(sha(draw.seed), seedHash, 'sha256(seed) is the seedHash published at creation')
  const pre = users.slice(0, 1000)
  const expected = [...pre].sort((x, y) => (sha(`${draw.seed}:${ticket.get(x)}`) < sha(`${draw.seed}:${ticket.get(y)}`)
    ? -1 : 1))
  t.same(draw.tickets, expected.map((u) => ticket.get(u)), 'the published draw is the recomputed order')
  const position = new Map<string, number>()
  expected.forEach((u, i) => position.set(u, i + 1))
  const byPosition = new Map([...position].map(([u, p]) => [p, u]))
  // Users far back try to claim at once: refused, with their place in line.
  const early = await claim(b.url, id, byPosition.get(999)!)
  t.match(early, { status: 403, body: { code: 'NOT_ADMITTED', position: 999 } }, 'no claim without admission')

  // The users: a loop reads the public state (as every client would) and each admitted user acts once.
  const acted = new Set<number>()
  const outcomes: Record<Behaviour | 'late', number> = { sleep: 0, lapse: 0, cancel: 0, confirm: 0, late: 0 }
  const issued: { user: string; position: number; claimId: string; sequence: number }[] = []
  const refused: number[] = []
  const inflight = new Set<Promise<void>>()
  let soldOutPolls = 0
  const act = async (p: number) => {
    const u = byPosition.get(p)!
    const what = behaviour(p)
    if (what === 'sleep') { outcomes.sleep++; return }
    const r = await claim(url(p), id, u)
    if (r.status !== 201) { refused.push(r.status); if (r.body.code === 'NOT_ADMITTED') outcomes.late++; return }
    issued.push({ user: u, position: p, claimId: r.body.claimId, sequence: r.body.sequence })
    outcomes[what]++
    if (what === 'confirm') {
      await http(`${url(p + 1)}/v1/campaigns/${id}/claims/${r.body.claimId}/confirm`, { method: 'POST', token: userToken(u) })
    } else if (what === 'cancel') {
      await http(`${url(p + 1)}/v1/campaigns/${id}/claims/${r.body.claimId}`, { method: 'DELETE', token: userToken(u) })
    }
  }
  const deadline = Date.now() + 60_000
  const users_ = (async () => {
    for (;;) {
      const s = (await http(`${url(soldOutPolls)}/v1/campaigns/${id}/queue`)).body
      for (let p = 1; p <= s.servingUpTo; p++) {
        if (acted.has(p) || !byPosition.has(p)) continue
        acted.add(p)
        const job = act(p).finally(() => inflight.delete(job))
        inflight.add(job)
        // Keep the box usable: at most 40 users act at once.
        while (inflight.size >= 40) await Promise.race(inflight)
      }
      if (s.state === 'sold_out') { soldOutPolls++; if (soldOutPolls >= 2 && inflight.size === 0) break }
      if (Date.now() > deadline) { t.fail(`not sold out in time: ${JSON.stringify(s)}`); break }
      await sleep(100)
    }
  })()

  // Meanwhile 500 join after the opening, one after the other (their arrival order is ours).
  const later: number[] = []
  for (let i = 1000; i < 1500; i++) {
    const r = await http(`${url(i)}/v1/campaigns/${id}/queue`, { method: 'POST', token: userToken(users[i]!) })
    ticket.set(users[i]!, r.body.ticket)
    later.push(r.body.position)
    position.set(users[i]!, r.body.position)
    byPosition.set(r.body.position, users[i]!)
  }
  t.same(later, Array.from({ length: 500 }, (_, i) => 1001 + i), 'later joins: 1001..1500 in arrival order')
  const mine = new Map<string, number | null>()
  await pool(pre, 20, async (u, i) => {
    const r = await http(`${url(i)}/v1/campaigns/${id}/queue/me`, { token: userToken(u) })
    mine.set(u, r.body.position)
  })
  t.ok(pre.every((u) => mine.get(u) === position.get(u)), 'every pre-queue user stands at the drawn position')

  await users_
  await Promise.all(inflight)
  t.comment(`outcomes ${JSON.stringify(outcomes)}, refused ${JSON.stringify(countBy(refused, (x) => x))}`)

  for (const u of urls) t.match(await http(`${u}/v1/campaigns/${id}/queue`), { body: { state: 'sold_out' } }, `${u}: sold_out`)
  const f = await redis.hmget(keys.campaign(id), 'stock', 'issued', 'returned', 'qAdmitted', 'qExpired', 'qServing')
  const [stock, issuedN, returned, admitted, expired, serving] = f.map(Number)
  t.equal(issuedN! - returned!, stock!, 'Redis: exactly the stock held')
  t.equal(issuedN, issued.length, 'Redis: every 201 is one sequence')
  t.equal(returned, outcomes.lapse + outcomes.cancel, 'returned = lapsed holds + cancellations')
  t.equal(await redis.zcard(keys.queueAdmits(id)), 0, 'no admission pending')
  t.equal(admitted, issued.length + expired!, 'every admission was used for a claim or expired')
  t.equal(admitted, serving, 'servingUpTo = admissions')
  t.ok(expired! >= outcomes.sleep, 'every sleeper\'s admission expired (and any that came too late)')
  t.ok(outcomes.sleep > 0 && outcomes.lapse > 0 && outcomes.cancel > 0, 'each behaviour happened')
  t.ok(issued.every((c) => c.position <= serving!), 'every 201 went to an admitted position')
  t.ok(issuedN! > stock!, 'returned units were issued again')

  // Admission order: positions 1, 2, 3, ... in the log (the draw, then arrival order), expiries in between.
  const log = parseLog(await redis.lrange(keys.queueLog(id), 0, -1))
  const admittedOrder = log.filter((e) => e.kind === 'admitted').map((e) => e.position)
  t.same(admittedOrder, Array.from({ length: admitted! }, (_, i) => i + 1), 'admitted strictly in line order')
  t.equal(log.filter((e) => e.kind === 'expired').length, expired)
  // Returned units went to the waiting list in order: the units issued again (sequence > stock) went to
  // positions admitted after the first 300, in increasing order of claim.
  const again = issued.filter((c) => c.sequence > stock!).sort((x, y) => x.sequence - y.sequence)
  t.equal(again.length, returned, 'each returned unit issued again once')
  t.ok(again.every((c) => c.position > 300), 'to users behind the first 300')

  // Every waiting user's next poll says sold out.
  const waiting = users.filter((u) => position.get(u)! > serving!)
  const states: string[] = []
  await pool(waiting, 40, async (u, i) => {
    states.push((await http(`${url(i)}/v1/campaigns/${id}/queue/me`, { token: userToken(u) })).body.state)
  })
  t.same(countBy(states, (s) => s), { sold_out: waiting.length }, `${waiting.length} waiting users: sold_out`)
  const lateJoin = await http(`${a.url}/v1/campaigns/${id}/queue`, { method: 'POST', token: userToken('latecomer') })
  t.match(lateJoin, { status: 201, body: { position: 1501, state: 'sold_out' } })

  // PostgreSQL: the worker persisted every claim; exactly the stock holds a unit.
  await waitUntil('persisted', async () => (await sql`SELECT count(*)::int AS n FROM claims WHERE campaign_id = ${id}`)[0]!.n === issuedN, 30_000)
  await waitUntil('lifecycle persisted', async () => (await sql`SELECT count(*)::int AS n FROM claims
    WHERE campaign_id = ${id} AND cancelled_at IS NULL AND expired_at IS NULL`)[0]!.n === stock, 30_000)
  const [row] = await sql`SELECT active_claims FROM campaigns WHERE id = ${id}`
  t.equal(row!.active_claims, stock, 'PostgreSQL: exactly the stock active')
  const rc = await reconcileIn(env, { campaignId: id })
  const mineRc = rc.campaigns.find((c) => c.campaignId === id)!
  t.equal(mineRc.drift, 0, 'reconcile: clean')

  const report = await http(`${a.url}/admin/campaigns/${id}/report`, { admin: true })
  t.equal(report.status, 200)
  t.match(report.body, { campaignId: id, stock: 300, joins: { preQueue: 1000, afterOpening: 501 }, admissions: admitted,
    expiredAdmissions: expired, returnedUnits: { returned, taken: returned }, fairness: 1 })
  t.ok(report.body.soldOutAfterSeconds > 0 && report.body.firstIssuedAfterSeconds >= 0)
  await waitUntil('answers flushed', async () => {
    const r = (await http(`${a.url}/admin/campaigns/${id}/report`, { admin: true })).body
    return (r.answersByStatus['201'] ?? 0) === issued.length
  }, 5000)
  t.comment(`drop report: ${JSON.stringify((await http(`${a.url}/admin/campaigns/${id}/report`, { admin: true })).body)}`)
})
