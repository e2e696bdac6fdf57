import { createHash } from 'node:crypto'
import t from 'tap'
import { testEnv, startApp, createCampaign, claim, http, userToken } from './helper.js'
import { waitUntil } from './worker-helper.js'
import { keysOf, reconcileIn } from './reconcile-helper.js'

const sha = (s: string) => createHash('sha256').update(s).digest('hex')
const join = (url: string, id: string, user: string) =>
  http(`${url}/v1/campaigns/${id}/queue`, { method: 'POST', token: userToken(user) })
const me = (url: string, id: string, user: string) => http(`${url}/v1/campaigns/${id}/queue/me`, { token: userToken(user) })
const state = (url: string, id: string) => http(`${url}/v1/campaigns/${id}/queue`)
const queue = { order: 'shuffle', admitPerSecond: 1000, admitSeconds: 60 }

t.test('waiting room: bad inputs and refusals', async (t) => {
  const { config, sql } = await testEnv(t, { RATE_LIMIT_USER_MAX: '0' })
  const { url } = await startApp(t, config)
  const create = (q: unknown) => http(`${url}/admin/campaigns`, { method: 'POST', admin: true,
    body: { name: 'q', stock: 1, queue: q } })
  for (const bad of [{ ...queue, admitPerSecond: 0 }, { ...queue, admitPerSecond: 100_001 },
    { ...queue, admitSeconds: 0 }, { ...queue, admitSeconds: 86_401 }, { ...queue, admitPerSecond: 1.5 },
    { ...queue, order: 'lifo' }, { order: 'fifo', admitPerSecond: 1 }, { ...queue, extra: 1 }, 'fifo',
    { ...queue, admitSeconds: '5' }]) {
    const r = await create(bad)
    t.equal(r.status, 400, `400 for ${JSON.stringify(bad)}`)
    t.equal(r.body.code, 'VALIDATION')
  }
  t.equal((await sql`SELECT count(*)::int AS n FROM campaigns`)[0]!.n, 0, 'nothing written')

  const ok = await create({ order: 'fifo', admitPerSecond: 100_000, admitSeconds: 86_400 })
  t.equal(ok.status, 201)
  t.match(ok.body.queue, { order: 'fifo', admitPerSecond: 100_000, admitSeconds: 86_400, seedHash: /^[0-9a-f]{64}$/ })
  const row = (await sql`SELECT queue_order, queue_admit_per_second, queue_admit_seconds, queue_seed
    FROM campaigns WHERE id = ${ok.body.id}`)[0]!
  t.match(row, { queue_order: 'fifo', queue_admit_per_second: 100_000, queue_admit_seconds: 86_400 })
  t.equal(sha(row.queue_seed), ok.body.queue.seedHash, 'seedHash = sha256(seed), the seed in PostgreSQL')

  const plain = await createCampaign(url, { name: 'plain', stock: 5 })
  t.equal((await http(`${url}/admin/campaigns/${plain}`, { admin: true })).body.queue, null)
  t.match(await join(url, plain, 'u1'), { status: 409, body: { code: 'NO_QUEUE' } }, 'no queue: 409 NO_QUEUE')
  t.match(await state(url, plain), { status: 409, body: { code: 'NO_QUEUE' } })
  t.match(await join(url, '99999', 'u1'), { status: 404, body: { code: 'CAMPAIGN_NOT_FOUND' } })
  t.match(await http(`${url}/v1/campaigns/${plain}/queue`, { method: 'POST' }), { status: 401 })

  // Closed: closesAt passed.
  const closes = new Date(Date.now() + 1500).toISOString()
  const closing = await createCampaign(url, { name: 'closing', stock: 5, closesAt: closes, queue })
  t.equal((await join(url, closing, 'early')).status, 201)
  await waitUntil('closed', async () => Date.now() > Date.parse(closes) + 50)
  t.match(await join(url, closing, 'late'), { status: 403, body: { code: 'CLOSED' } }, 'closed: 403 CLOSED')
  t.match(await join(url, closing, 'early'), { status: 200 }, 'one already in line still reads its place')
  await waitUntil('state closed', async () => (await state(url, closing)).body.state === 'closed')

  // Archived: the closed campaign, archived (its live state leaves Redis).
  const arch = closing
  const archived = await http(`${url}/admin/campaigns/${arch}/archive`, { method: 'POST', admin: true })
  t.equal(archived.status, 200, JSON.stringify(archived.body))
  t.match(await join(url, arch, 'u2'), { status: 403, body: { code: 'CLOSED' } }, 'archived: 403 CLOSED')
  t.match(await state(url, arch), { status: 200, body: { state: 'closed' } })
})

t.test('waiting room: join twice, pre-queue, draw, admission, NOT_ADMITTED', async (t) => {
  const { config } = await testEnv(t, { RATE_LIMIT_USER_MAX: '0', QUEUE_TICK_MS: '50' })
  const { url } = await startApp(t, config)
  const opensAt = Date.now() + 2500
  const id = await createCampaign(url, { name: 'drop', stock: 2, opensAt: new Date(opensAt).toISOString(),
    queue: { order: 'shuffle', admitPerSecond: 1000, admitSeconds: 4 } })
  const created = await http(`${url}/admin/campaigns/${id}`, { admin: true })
  const first = await join(url, id, 'a')
  t.equal(first.status, 201)
  t.match(first.body, { ticket: /^[A-Za-z0-9_-]{16}$/, position: null, state: 'pre_queue' })
  t.not(first.body.ticket, 'a', 'the ticket is not the user id')
  const again = await join(url, id, 'a')
  t.equal(again.status, 200, 'joining twice: 200')
  t.same(again.body, first.body, 'same body, same ticket')
  for (const u of ['b', 'c', 'd']) t.equal((await join(url, id, u)).status, 201)
  const pre = await state(url, id)
  t.match(pre, { status: 200, body: { state: 'pre_queue', length: 4, servingUpTo: 0, seed: null,
    seedHash: created.body.queue.seedHash } })
  t.equal(pre.headers.get('cache-control'), 'public, max-age=1')
  t.match(await claim(url, id, 'a'), { status: 403, body: { code: 'NOT_OPEN' } })
  t.match(await http(`${url}/v1/campaigns/${id}/queue/draw`), { status: 403, body: { code: 'NOT_OPEN' } })
  t.match(await me(url, id, 'a'), { status: 200, body: { state: 'pre_queue', position: null, ahead: null } })
  t.match(await me(url, id, 'zz'), { status: 404, body: { code: 'NOT_IN_QUEUE' } })

  await waitUntil('opened and admitted', async () => (await state(url, id)).body.servingUpTo === 2, 10_000)
  const open = (await state(url, id)).body
  t.equal(sha(open.seed), open.seedHash, 'the revealed seed matches the published hash')
  const draw = await http(`${url}/v1/campaigns/${id}/queue/draw`)
  t.equal(draw.status, 200)
  const tickets: Record<string, string> = {}
  for (const u of ['a', 'b', 'c', 'd']) tickets[u] = (await join(url, id, u)).body.ticket
  const expected = Object.values(tickets).sort((x, y) => (sha(`${open.seed}:${x}`) < sha(`${open.seed}:${y}`) ? -1 : 1))
  t.same(draw.body.tickets, expected, 'the draw: tickets by sha256(seed:ticket) ascending')
  t.equal(draw.body.total, 4)
  const page = await http(`${url}/v1/campaigns/${id}/queue/draw?offset=1&limit=2`)
  t.same(page.body, { seed: open.seed, tickets: expected.slice(1, 3), total: 4, offset: 1, nextOffset: 3 })
  const byPos = Object.fromEntries(Object.entries(tickets).map(([u, tk]) => [expected.indexOf(tk) + 1, u]))
  // Stock 2: only positions 1 and 2 are admitted.
  const third = byPos[3]!
  const r3 = await claim(url, id, third)
  t.match(r3, { status: 403, body: { code: 'NOT_ADMITTED', position: 3 } }, 'not admitted: 403 with position')
  t.match(await me(url, id, third), { body: { state: 'waiting', position: 3, ahead: 0, estimatedWaitSeconds: 1 } })
  const m1 = await me(url, id, byPos[1]!)
  t.match(m1.body, { state: 'admitted', position: 1, ahead: 0, estimatedWaitSeconds: 0 })
  t.ok(Date.parse(m1.body.admittedUntil) > Date.now() - 100)
  t.equal((await claim(url, id, byPos[1]!)).status, 201, 'admitted: 201')
  t.match(await me(url, id, byPos[1]!), { body: { state: 'claimed' } })
  t.match(await claim(url, id, byPos[1]!), { status: 409, body: { code: 'ALREADY_CLAIMED' } })
  // Position 2 lets its admission run out: position 3 is admitted in its place, claims the last unit.
  await waitUntil('3 admitted', async () => (await me(url, id, third)).body.state === 'admitted', 10_000)
  t.match(await me(url, id, byPos[2]!), { body: { state: 'expired' } })
  t.match(await claim(url, id, byPos[2]!), { status: 403, body: { code: 'NOT_ADMITTED', position: 2 } })
  t.equal((await claim(url, id, third)).status, 201)
  await waitUntil('sold out', async () => (await state(url, id)).body.state === 'sold_out', 5000)
  t.match(await me(url, id, byPos[4]!), { body: { state: 'sold_out', position: 4 } })
  // A late join gets the next position in arrival order.
  t.match(await join(url, id, 'late'), { status: 201, body: { position: 5, state: 'sold_out' } })
  t.match(await claim(url, id, 'late'), { status: 403, body: { code: 'NOT_ADMITTED', position: 5 } })
})

t.test('waiting room: a live state rebuilt by reconcile keeps the admission check', async (t) => {
  const env = await testEnv(t, { RATE_LIMIT_USER_MAX: '0', QUEUE_TICK_MS: '50' })
  const { url } = await startApp(t, env.config)
  const id = await createCampaign(url, { name: 'rebuilt', stock: 5, queue })
  t.equal((await join(url, id, 'inline')).status, 201)
  await waitUntil('admitted', async () => (await me(url, id, 'inline')).body.state === 'admitted', 10_000)
  t.equal((await claim(url, id, 'inline')).status, 201)
  // Redis loses the campaign hash; reconcile --fix rebuilds it from PostgreSQL.
  await env.redis.del(keysOf(env).campaign(id))
  await reconcileIn(env, { campaignId: id, fix: true })
  t.equal(await env.redis.hget(keysOf(env).campaign(id), 'qOrder'), 'shuffle', 'the rebuilt hash has its queue')
  t.match(await claim(url, id, 'stranger'), { status: 403, body: { code: 'NOT_ADMITTED' } },
    'a user the room never admitted cannot claim from the rebuilt campaign')
})
