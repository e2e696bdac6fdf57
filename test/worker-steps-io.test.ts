/**
 * The worker's named steps (src/worker/loop.ts) driven one at a time on real Redis and PostgreSQL: read,
 * classify, persist, ack, report; then reclaim of another consumer's idle entries.
 */
import t from 'tap'
import { pino } from 'pino'
import { testEnv, startApp, createCampaign, claim, countBy } from './helper.js'
import { createKeys } from '../src/redis/keys.js'
import { createWorkerParts } from '../src/worker/worker.js'
import { ack, ensureGroups, persist, read, reclaim, report } from '../src/worker/loop.js'
import { classifyEntries } from '../src/worker/steps.js'

t.test('the worker steps, one by one', async (t) => {
  const { config, redis, sql } = await testEnv(t, { RATE_LIMIT_IP_MAX: '0', RATE_LIMIT_USER_MAX: '0',
    WORKER_BLOCK_MS: '100', RECLAIM_IDLE_MS: '1' })
  const { url } = await startApp(t, config)
  const id = await createCampaign(url, { name: 'steps', stock: 10 })
  const stream = createKeys(config.KEY_PREFIX, config.STREAM_PARTITIONS).streamOf(id)
  const log = pino({ level: 'silent' })
  const open = (name: string) => {
    const p = createWorkerParts({ ...config, WORKER_NAME: name }, log)
    t.teardown(async () => {
      for (const c of p.blockingConns) c.disconnect()
      await p.redis.quit()
      await p.parts.db.close()
    })
    return p.parts
  }
  const claimAll = async (users: string[]) =>
    countBy(await Promise.all(users.map((u) => claim(url, id, u))), (r) => r.status)
  const rows = async () => (await sql`SELECT count(*)::int AS n FROM claims WHERE campaign_id = ${id}`)[0]!.n
  const pending = async () => Number((await redis.xpending(stream, config.WORKER_GROUP) as [number])[0])

  const a = open('steps-a')
  await ensureGroups(a)
  t.same(await claimAll(['u1', 'u2', 'u3', 'u4', 'u5', 'u6']), { 201: 6 })

  const batch = await read(a)
  t.equal(batch.length, 6, 'read: the six new entries')
  const { items, dead } = classifyEntries(batch, config.MAX_DELIVERIES)
  t.same([items.length, dead.length], [6, 0], 'classify: six rows, no dead letter')
  const persisted = await persist(a, items, dead)
  t.same([persisted.inserted, persisted.letters.length, persisted.held.size], [6, 0, 0], 'persist: six rows')
  t.equal(await rows(), 6)
  t.equal(await pending(), 6, 'committed but not yet acked: still pending')
  await ack(a, batch, persisted.held)
  t.same([await pending(), await redis.xlen(stream)], [0, 0], 'ack: acked and deleted')
  report(a, batch, { items: items.length, dead: dead.length, inserted: persisted.inserted,
    letters: persisted.letters, held: persisted.held, insertS: 0, ms: 0 })
  t.match(a.stats, { batches: 1, entries: 6, inserted: 6, failed: 0 }, 'report: counted')

  // Consumer a reads four more and stops there (a crash); b reclaims them once idle.
  t.same(await claimAll(['u7', 'u8', 'u9', 'u10']), { 201: 4 })
  t.equal((await read(a)).length, 4)
  t.equal(await pending(), 4)
  const b = open('steps-b')
  await new Promise((r) => setTimeout(r, 5)) // idle longer than RECLAIM_IDLE_MS (1 ms)
  await reclaim(b)
  t.equal(b.stats.reclaimed, 4, 'reclaim: the four idle entries taken over')
  t.same([await rows(), await pending(), await redis.xlen(stream)], [10, 0, 0], 'persisted once each, acked')
})
