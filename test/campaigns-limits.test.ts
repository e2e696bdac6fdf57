/**
 * Found by an OpenAPI-driven fuzzer (issue 18): stock additions past the maximum answered 500 (integer out
 * of range), and the live feed of an archived campaign answered 404 while the admin view said archived.
 */
import t from 'tap'
import { testEnv, startApp, http, createCampaign } from './helper.js'
import { createKeys } from '../src/redis/keys.js'
import { STOCK_MAX } from '../src/campaigns/schemas.js'

t.test('stock additions stop at the maximum with 409 STOCK_LIMIT, never 500, and a keyed retry repeats it',
  async (t) => {
    const { config, sql, redis } = await testEnv(t)
    const { url } = await startApp(t, config)
    const keys = createKeys(config.KEY_PREFIX, config.STREAM_PARTITIONS)
    const id = await createCampaign(url, { name: 'big', stock: STOCK_MAX - 10 })
    const add = (n: number, key?: string) => http(`${url}/admin/campaigns/${id}/stock`, { method: 'POST', admin: true,
      body: { add: n }, headers: key ? { 'idempotency-key': key } : {} })

    const fits = await add(10)
    t.equal(fits.status, 200, 'up to the maximum itself')
    t.equal(fits.body.stock, STOCK_MAX)

    const over = await add(1)
    t.equal(over.status, 409, JSON.stringify(over.body))
    t.match(over.body, { code: 'STOCK_LIMIT', limit: STOCK_MAX, stock: STOCK_MAX })
    t.match(over.body.message, String(STOCK_MAX), 'the message names the limit')

    // Twenty-one additions of the largest allowed amount: each refused by name, nothing written.
    const many = await Promise.all(Array.from({ length: 21 }, () => add(STOCK_MAX)))
    t.same([...new Set(many.map((r) => r.status))], [409], 'every addition refused with 409')
    t.equal(Number((await sql`SELECT stock FROM campaigns WHERE id = ${id}`)[0]!.stock), STOCK_MAX, 'stock unchanged')
    t.equal(await redis.hget(keys.campaign(id), 'stock'), String(STOCK_MAX), 'Redis unchanged')

    const keyed = await add(STOCK_MAX, 'over-1')
    t.equal(keyed.status, 409)
    t.equal(keyed.body.code, 'STOCK_LIMIT')
    const replay = await add(STOCK_MAX, 'over-1')
    t.equal(replay.status, 409, 'the retry with the same key gets the same answer')
    t.same(replay.body, keyed.body)
    t.equal(replay.headers.get('idempotent-replayed'), 'true')
  })

t.test("an archived campaign's live feed answers 409 CAMPAIGN_ENDED, as its other admin routes do", async (t) => {
  const { config } = await testEnv(t)
  const { url } = await startApp(t, config)
  const now = Date.now()
  const id = await createCampaign(url, { name: 'past', stock: 5, opensAt: new Date(now - 60_000).toISOString(),
    closesAt: new Date(now - 30_000).toISOString() })
  const archived = await http(`${url}/admin/campaigns/${id}/archive`, { method: 'POST', admin: true })
  t.equal(archived.status, 200, JSON.stringify(archived.body))
  t.equal((await http(`${url}/admin/campaigns/${id}`, { admin: true })).body.state, 'archived')

  const feed = await http(`${url}/admin/campaigns/${id}/live`, { admin: true })
  t.equal(feed.status, 409, JSON.stringify(feed.body))
  t.equal(feed.body.code, 'CAMPAIGN_ENDED')
  const stock = await http(`${url}/admin/campaigns/${id}/stock`, { method: 'POST', admin: true, body: { add: 1 } })
  t.equal(stock.body.code, feed.body.code, 'the same answer as adding stock')
  t.equal((await http(`${url}/admin/campaigns/999999999/live`, { admin: true })).status, 404, 'unknown: still 404')
})
