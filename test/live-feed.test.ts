/**
 * The live feed: Server-Sent Events with a campaign's numbers, admin-only, one shared poller per campaign
 * per instance, closed when the campaign goes away, and bounded for a viewer that does not read.
 */
import { Writable } from 'node:stream'
import t from 'tap'
import { createSseWriter } from '../src/live/sse.js'
import { testEnv, startApp, createCampaign, http, ADMIN_TOKEN, countBy, claim } from './helper.js'
import { rowCount, spawnWorker, waitUntil } from './worker-helper.js'

interface Feed {
  events: { event: string; data: any }[]
  headers: Headers
  status: number
  closed: Promise<void>
  abort: () => void
  /** Resolves with the first event matching pred (already received or coming). */
  next: (pred: (e: { event: string; data: any }) => boolean,
    timeoutMs?: number) => Promise<{ event: string; data: any }>
}

/** Opens the feed with fetch (as the page does) and parses its events as they come. */
async function openFeed(url: string, id: string, token = ADMIN_TOKEN): Promise<Feed> {
  const controller = new AbortController()
  const res = await fetch(`${url}/admin/campaigns/${id}/live`,
    { headers: { authorization: `Bearer ${token}` }, signal: controller.signal })
  const events: Feed['events'] = []
  const waiters = new Set<() => void>()
  const closed = (async () => {
    if (!res.body) return
    const decoder = new TextDecoder()
    let buf = ''
    try {
      for await (const chunk of res.body) {
        buf += decoder.decode(chunk as Uint8Array, { stream: true })
        let cut
        while ((cut = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, cut)
          buf = buf.slice(cut + 2)
          const event = /^event: (.*)$/m.exec(block)?.[1]
          const data = /^data: (.*)$/m.exec(block)?.[1]
          if (event && data) events.push({ event, data: JSON.parse(data) })
        }
        for (const w of waiters) w()
      }
    } catch { /* aborted */ }
    for (const w of waiters) w()
  })()
  let done = false
  void closed.then(() => { done = true })
  const next: Feed['next'] = (pred, timeoutMs = 20_000) => new Promise((resolve, reject) => {
    const check = () => {
      const hit = events.find(pred)
      if (hit) { cleanup(); resolve(hit) } else if (done) { cleanup(); reject(new Error(`feed closed; events: ${JSON.stringify(events.slice(-3))}`)) }
    }
    const timer = setTimeout(() => { cleanup(); reject(new Error(`no matching event; last: ${JSON.stringify(events.slice(-2))}`)) }, timeoutMs)
    const cleanup = () => { clearTimeout(timer); waiters.delete(check) }
    waiters.add(check)
    check()
  })
  return { events, headers: res.headers, status: res.status, closed, abort: () => controller.abort(), next }
}

t.test('the feed follows a burst to sold out and persisted == stock, from one shared poller', async (t) => {
  const { config, env, sql } = await testEnv(t,
    { RATE_LIMIT_IP_MAX: '0', RATE_LIMIT_USER_MAX: '2', LIVE_INTERVAL_MS: '200' })
  const { url, app } = await startApp(t, config)
  const id = await createCampaign(url, { name: 'feed', stock: 300 })

  const a = await openFeed(url, id)
  t.equal(a.status, 200)
  t.match(a.headers.get('content-type'), /^text\/event-stream/)
  t.equal(a.headers.get('cache-control'), 'no-cache, no-transform')
  const first = await a.next((e) => e.event === 'snapshot')
  t.match(first.data, {
    campaignId: id, name: 'feed', state: 'open', stock: 300, issued: 0, remaining: 300, persisted: 0, pending: 0, deadLettered: 0,
    claimsPerSecond: { 201: 0, 409: 0, 410: 0, 429: 0, errors: 0 }, stream: { backlog: 0 },
  })
  // 30 viewers of the same campaign share one poller.
  const others = await Promise.all(Array.from({ length: 30 }, () => openFeed(url, id)))
  await Promise.all(others.map((f) => f.next((e) => e.event === 'snapshot')))

  // 400 users for 300 coupons, plus repeats: 201, 409 and 410 answers, no worker yet.
  const users = Array.from({ length: 400 }, (_, i) => `u${i}`)
  const results = await Promise.all([...users, ...users.slice(0, 50)].map((u) => claim(url, id, u)))
  const statuses = countBy(results, (r) => r.status)
  t.equal(statuses['201'], 300)

  const soldOut = await a.next((e) => e.event === 'snapshot' && e.data.state === 'sold_out')
  t.match(soldOut.data, { issued: 300, remaining: 0, persisted: 0, pending: 300, stream: { backlog: 300 } })
  t.ok(soldOut.data.stream.oldestAgeMs >= 0, 'the oldest unpersisted entry has an age')
  // Some snapshot saw the burst's rates: issued from the counter, refusals from this instance's metrics.
  const peak = (o: string) => Math.max(...a.events.filter((e) => e.event === 'snapshot').map((e) => e.data.claimsPerSecond[o]))
  t.ok(peak('201') > 0, `201/s seen (${peak('201')})`)
  t.ok(peak('410') + peak('409') > 0, `refusals seen (409: ${peak('409')}, 410: ${peak('410')})`)

  // A worker persists; the feed reaches persisted == stock, as the admin API does.
  // Generous: a busy shared machine can take long to start a process.
  await spawnWorker(t, env, 'feed-w1').waitForLog((l) => l.msg === 'worker started', 120_000)
  await waitUntil('rows', async () => (await rowCount(sql, id)) === 300)
  const drained = await a.next((e) => e.event === 'snapshot' && e.data.persisted === 300 && e.data.stream.backlog === 0)
  const admin = await http(`${url}/admin/campaigns/${id}`, { admin: true })
  t.match(drained.data, { remaining: admin.body.remaining, persisted: admin.body.persisted, pending: 0,
    issued: admin.body.issued })

  t.same(app.liveStats(), { campaigns: 1, viewers: 31 }, 'one poller for 31 viewers')
  for (const f of others) f.abort()
  await waitUntil('viewers gone', async () => app.liveStats().viewers === 1)
  a.abort()
  await waitUntil('poller stopped', async () => app.liveStats().campaigns === 0)
})

t.test('admin only; 404 for an unknown campaign; the page and its files are served', async (t) => {
  const { config } = await testEnv(t)
  const { url } = await startApp(t, config)
  const id = await createCampaign(url, { name: 'auth', stock: 1 })
  const none = await http(`${url}/admin/campaigns/${id}/live`)
  t.equal(none.status, 401)
  t.equal(none.body.code, 'UNAUTHORIZED')
  const wrong = await http(`${url}/admin/campaigns/${id}/live`, { token: `${ADMIN_TOKEN}x` })
  t.equal(wrong.status, 401)
  const missing = await http(`${url}/admin/campaigns/999999/live`, { admin: true })
  t.same([missing.status, missing.body.code], [404, 'CAMPAIGN_NOT_FOUND'])
  const bad = await http(`${url}/admin/campaigns/abc/live`, { admin: true })
  t.same([bad.status, bad.body.code], [400, 'VALIDATION'])

  const page = await fetch(`${url}/admin/live`)
  t.equal(page.status, 200)
  t.match(page.headers.get('content-type'), /^text\/html/)
  t.match(page.headers.get('content-security-policy'), /script-src 'self'/)
  const html = await page.text()
  t.match(html, /<script src="\/admin\/live\/live\.js"/)
  t.notMatch(html, /https?:\/\//, 'nothing loaded from elsewhere')
  const js = await fetch(`${url}/admin/live/live.js`)
  t.match(js.headers.get('content-type'), /^text\/javascript/)
  t.match(await js.text(), /authorization/)
  t.equal((await fetch(`${url}/admin/live/other.js`)).status, 400)

  const list = await http(`${url}/admin/campaigns`, { admin: true })
  t.equal(list.status, 200)
  t.match(list.body.campaigns[0], { id, name: 'auth', stock: 1 })
  t.equal((await http(`${url}/admin/campaigns`)).status, 401)
  t.equal((await http(`${url}/admin/campaigns?limit=0`, { admin: true })).status, 400)
})

t.test('the feed ends when the campaign is gone, and when the server closes', async (t) => {
  const { config, redis, sql } = await testEnv(t, { LIVE_INTERVAL_MS: '100' })
  const { url, app } = await startApp(t, config)
  const id = await createCampaign(url, { name: 'gone', stock: 5 })
  const f = await openFeed(url, id)
  await f.next((e) => e.event === 'snapshot')
  // Live state lost but the campaign exists: the feed says so and stays open (reconcile can rebuild it).
  const key = (await redis.keys(`${config.KEY_PREFIX}:*campaign:${id}`))[0]!
  const saved = await redis.hgetall(key)
  await redis.del(key)
  await f.next((e) => e.event === 'problem')
  await redis.hset(key, saved)
  const back = f.events.length
  await f.next((e) => e.event === 'snapshot' && f.events.indexOf(e) >= back)
  // Deleted from PostgreSQL as well (what an archive leaves to the feed): the feed ends.
  await redis.del(key)
  await sql`DELETE FROM campaigns WHERE id = ${id}`
  const end = await f.next((e) => e.event === 'end')
  t.match(end.data.reason, /archived|deleted/)
  await f.closed
  t.equal(app.liveStats().campaigns, 0)

  const id2 = await createCampaign(url, { name: 'closing', stock: 5 })
  const g = await openFeed(url, id2)
  await g.next((e) => e.event === 'snapshot')
  await app.close()
  const bye = await g.next((e) => e.event === 'end')
  t.match(bye.data.reason, /shutting down/)
})

t.test('a viewer that does not read holds at most one queued event', async (t) => {
  // A socket whose peer never reads: every write after the first stays queued.
  const stalled = new Writable({ highWaterMark: 1024, write(_chunk, _enc, _cb) { /* never completes */ } })
  const sse = createSseWriter(stalled)
  const payload = JSON.stringify({ numbers: 'x'.repeat(500) })
  t.ok(sse.event('snapshot', payload), 'the first event is written')
  for (let i = 0; i < 10_000; i++) sse.event('snapshot', payload)
  const s = sse.stats()
  t.equal(s.sent, 1)
  t.equal(s.skipped, 10_000)
  t.ok(s.buffered < 1024, `buffered ${s.buffered} bytes`)

  // A reading client gets every event.
  const chunks: string[] = []
  const fine = new Writable({ write(chunk, _enc, cb) { chunks.push(String(chunk)); cb() } })
  const ok = createSseWriter(fine)
  for (let i = 0; i < 100; i++) ok.event('snapshot', JSON.stringify({ i }))
  t.equal(ok.stats().sent, 100)
  t.equal(chunks.length, 100)
  t.equal(chunks[7], 'event: snapshot\ndata: {"i":7}\n\n')
})
