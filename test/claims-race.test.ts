import t from 'tap'
import { randomUUID } from 'node:crypto'
import { testEnv, startApp, createCampaign, claim, countBy } from './helper.js'
import { createKeys } from '../src/redis/keys.js'
import { rawClaim } from '../src/redis/stream-entry.js'
import { createRedis } from '../src/redis/client.js'
import { runClaim } from '../src/claims/claim-script.js'
import { defineScripts } from '../src/redis/scripts.js'

t.test('1,000 distinct users at once on stock 300', async (t) => {
  const { config, redis } = await testEnv(t, { RATE_LIMIT_IP_MAX: '0' })
  const { url } = await startApp(t, config)
  const keys = createKeys(config.KEY_PREFIX, config.STREAM_PARTITIONS)
  const id = await createCampaign(url, { name: 'race', stock: 300 })

  const results = await Promise.all(Array.from({ length: 1000 }, (_, i) => claim(url, id, `user-${i}`)))
  t.same(countBy(results, (r) => r.status), { 201: 300, 410: 700 })
  const seqs = results.filter((r) => r.status === 201).map((r) => r.body.sequence as number).sort((a, b) => a - b)
  t.same(seqs, Array.from({ length: 300 }, (_, i) => i + 1), 'sequences 1..300 each exactly once')
  t.ok(results.filter((r) => r.status === 410).every((r) => r.body.code === 'SOLD_OUT'))

  t.equal(await redis.hget(keys.campaign(id), 'issued'), '300')
  t.equal(await redis.hlen(keys.users(id)), 300)
  const entries = await redis.xrange(keys.streamOf(id), '-', '+')
  t.equal(entries.length, 300, '300 stream entries')
  const streamSeqs = new Set(entries.map(([, f]) => rawClaim(f)?.sequence))
  t.equal(streamSeqs.size, 300)
})

t.test('double-click: one user, 50 concurrent claims', async (t) => {
  const { config, redis } = await testEnv(t)
  const { url } = await startApp(t, config)
  const keys = createKeys(config.KEY_PREFIX, config.STREAM_PARTITIONS)
  for (const limit of [1, 3]) {
    const id = await createCampaign(url, { name: `dc${limit}`, stock: 100, perUserLimit: limit })
    const results = await Promise.all(Array.from({ length: 50 }, () => claim(url, id, 'clicker')))
    const counts = countBy(results, (r) => r.status)
    t.equal(counts[201], limit, `perUserLimit ${limit}: exactly ${limit} x 201`)
    t.equal(counts[409], 50 - limit, 'the rest ALREADY_CLAIMED')
    const conflict = results.find((r) => r.status === 409)!
    t.equal(conflict.body.code, 'ALREADY_CLAIMED')
    t.same([...conflict.body.sequences].sort(), Array.from({ length: limit }, (_, i) => i + 1),
      'the 409 lists the user\'s sequences')
    t.equal(await redis.hget(keys.campaign(id), 'issued'), String(limit))
  }
})

t.test('the script run twice with the same claimId returns one claim, the same answer', async (t) => {
  const { config, redis } = await testEnv(t)
  const { url } = await startApp(t, config)
  const keys = createKeys(config.KEY_PREFIX, config.STREAM_PARTITIONS)
  const id = await createCampaign(url, { name: 'resend', stock: 5, perUserLimit: 2 })
  const client = createRedis(config, { log: console, commandTimeoutMs: config.REDIS_COMMAND_TIMEOUT_MS })
  t.teardown(() => client.quit())
  defineScripts(client)
  const args = { campaignId: id, userId: 'u1', claimId: randomUUID(), idempotencyTtlS: 60 }
  const first = await runClaim(client, keys, args)
  const second = await runClaim(client, keys, args)
  t.equal(first.outcome.kind, 'issued')
  t.same(second, first, 'identical answer, not ALREADY_CLAIMED or a second sequence')
  t.equal(await redis.hget(keys.campaign(id), 'issued'), '1')
  t.equal(await redis.xlen(keys.streamOf(id)), 1)
})

t.test('SCRIPT FLUSH while serving: the next claims still succeed', async (t) => {
  const { config, redis } = await testEnv(t, { RATE_LIMIT_IP_MAX: '0' })
  const { url } = await startApp(t, config)
  const keys = createKeys(config.KEY_PREFIX, config.STREAM_PARTITIONS)
  const id = await createCampaign(url, { name: 'flush', stock: 1000 })
  const before = await Promise.all(Array.from({ length: 20 }, (_, i) => claim(url, id, `a${i}`)))
  // Flushing the script cache of the shared Redis only costs other test files one NOSCRIPT retry.
  await redis.script('FLUSH')
  const during = Promise.all(Array.from({ length: 100 }, (_, i) => claim(url, id, `b${i}`)))
  await redis.script('FLUSH')
  const after = await during
  t.ok([...before, ...after].every((r) => r.status === 201), 'every claim succeeded')
  t.equal(await redis.hget(keys.campaign(id), 'issued'), '120')
})
