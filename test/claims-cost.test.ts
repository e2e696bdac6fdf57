/**
 * What one claim costs Redis: one round trip (the per-user limit counted inside claim.lua), refusals
 * that answer from the record's count header with a small body, and records written before the count
 * header existed still honoured (and rewritten when the user is next issued a claim).
 */
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { Redis } from 'ioredis'
import { testEnv, startApp, createCampaign, claim, freePort, waitForOutput, countBy } from './helper.js'
import { createKeys } from '../src/redis/keys.js'
import { createRedis } from '../src/redis/client.js'
import { runClaim } from '../src/claims/claim-script.js'
import { defineScripts } from '../src/redis/scripts.js'
import { parseUserRecord } from '../src/redis/users-record.js'

t.test('the issue path is one Redis round trip, the per-user limit included', async (t) => {
  // A private redis-server: MONITOR then sees this test's commands only.
  const port = await freePort()
  const server: ChildProcess = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] })
  await waitForOutput(server, /Ready to accept connections/, 10_000)
  t.teardown(async () => {
    if (server.exitCode === null) { server.kill('SIGKILL'); await once(server, 'exit') }
  })
  const { config } = await testEnv(t, { RATE_LIMIT_IP_MAX: '0', RATE_LIMIT_USER_MAX: '5', RATE_LIMIT_USER_WINDOW_MS: '60000' })
  const redisUrl = `redis://127.0.0.1:${port}`
  const { url } = await startApp(t, { ...config, REDIS_URL: redisUrl })
  const id = await createCampaign(url, { name: 'rt', stock: 30, perUserLimit: 2 })
  // Warm up: the first claim may load the script (NOSCRIPT, then EVAL).
  t.equal((await claim(url, id, 'warm')).status, 201)

  const monitor = new Redis(redisUrl)
  t.teardown(() => monitor.disconnect())
  const lines: string[] = []
  const m = await monitor.monitor()
  m.on('monitor', (_time: string, args: string[], source: string) => lines.push(`${source} ${args[0]!.toLowerCase()}`))
  t.teardown(() => m.disconnect())
  await new Promise((r) => setTimeout(r, 100))
  const results = await Promise.all(Array.from({ length: 20 }, (_, i) => claim(url, id, `u${i}`)))
  t.same(countBy(results, (r) => r.status), { 201: 20 })
  await new Promise((r) => setTimeout(r, 200))
  const top = lines.filter((l) => !l.startsWith('lua '))
  t.same(countBy(top, (l) => l.split(' ')[1]!), { evalsha: 20 }, 'one EVALSHA per claim, nothing else sent')
  t.ok(lines.some((l) => l === 'lua incr'), 'the per-user counter is counted inside the script')
})

t.test('per-user limit counted in claim.lua: its key shares the campaign hash tag and names the user', async (t) => {
  const { config, redis } = await testEnv(t, { RATE_LIMIT_IP_MAX: '0', RATE_LIMIT_USER_MAX: '2', RATE_LIMIT_USER_WINDOW_MS: '60000' })
  const { url } = await startApp(t, config)
  const keys = createKeys(config.KEY_PREFIX, config.STREAM_PARTITIONS)
  const id = await createCampaign(url, { name: 'rl', stock: 10, perUserLimit: 1 })
  const results = []
  for (let i = 0; i < 4; i++) results.push(await claim(url, id, 'bot'))
  t.same(results.map((r) => r.status), [201, 409, 429, 429], 'refusals count too; the third request is limited')
  t.equal(results[2]!.body.code, 'RATE_LIMITED')
  t.ok(Number(results[2]!.headers.get('retry-after')) >= 59, 'Retry-After is the rest of the window')
  const rl = keys.userRate(id, 'bot')
  t.equal(await redis.get(rl), '4')
  const tag = (k: string) => /\{[^}]*\}/.exec(k)?.[0]
  t.equal(tag(rl), tag(keys.campaign(id)), 'same hash tag as the campaign')
  const stray = await redis.keys(`${config.KEY_PREFIX}*undefined*`)
  t.same(stray, [], 'no key built from undefined parts')
})

t.test('at limit with a long history: the refusal reads the count, the 409 stays small', async (t) => {
  const { config, redis } = await testEnv(t, { RATE_LIMIT_IP_MAX: '0', RATE_LIMIT_USER_MAX: '0' })
  const { url } = await startApp(t, config)
  const keys = createKeys(config.KEY_PREFIX, config.STREAM_PARTITIONS)
  const id = await createCampaign(url, { name: 'heavy', stock: 5000, perUserLimit: 1000 })
  // A plain client without the app's command timeout: 1,000 set-up claims on a loaded machine may queue.
  const client = new Redis(config.REDIS_URL)
  t.teardown(() => client.quit())
  defineScripts(client)
  const issued = await Promise.all(Array.from({ length: 1000 }, () =>
    runClaim(client, keys, { campaignId: id, userId: 'hoarder', claimId: randomUUID(), idempotencyTtlS: 60 })))
  t.ok(issued.every((r) => r.outcome.kind === 'issued'))
  const record = await redis.hget(keys.users(id), 'hoarder')
  t.match(record, /^1000;1:/, 'the record starts with its count')
  t.equal(parseUserRecord(record).claims.length, 1000)

  const refused = await claim(url, id, 'hoarder')
  t.equal(refused.status, 409)
  t.equal(refused.body.code, 'ALREADY_CLAIMED')
  t.equal(refused.body.count, 1000, 'the count')
  t.same(refused.body.sequences, Array.from({ length: 10 }, (_, i) => i + 1), 'the first 10 sequences, not 1000')
  t.ok(JSON.stringify(refused.body).length < 400, 'a small body')

  // The refusal does not walk the entries: a record whose header says "at limit" is refused on that
  // alone, even when what follows the listed entries is not a list of claims at all.
  const tenEntries = Array.from({ length: 12 }, (_, i) => `${i + 1}:${randomUUID()}:1700000000000`).join(',')
  await redis.hset(keys.users(id), 'header-only', `1000;${tenEntries},${'x'.repeat(100_000)}`)
  const r = await claim(url, id, 'header-only')
  t.equal(r.status, 409)
  t.equal(r.body.count, 1000)
  t.equal(r.body.sequences.length, 10)
  t.equal(await redis.hget(keys.campaign(id), 'issued'), '1000', 'nothing issued by the refusals')
})

t.test('records in the old format (no count header) are honoured and rewritten on the next issue', async (t) => {
  const { config, redis } = await testEnv(t, { RATE_LIMIT_IP_MAX: '0' })
  const { url } = await startApp(t, config)
  const keys = createKeys(config.KEY_PREFIX, config.STREAM_PARTITIONS)
  const id = await createCampaign(url, { name: 'old', stock: 10, perUserLimit: 3 })
  const [a, b] = [randomUUID(), randomUUID()]
  // As the previous claim.lua wrote them: issued was raised past them.
  await redis.hset(keys.campaign(id), 'issued', '4')
  await redis.hset(keys.users(id), 'veteran', `1:${a}:1700000000000,3:${b}:1700000000001`, 'full', `2:${randomUUID()}:1700000000000,4:${randomUUID()}:1,5:${randomUUID()}:2`)

  const atLimit = await claim(url, id, 'full')
  t.equal(atLimit.status, 409, 'an old record at the limit is refused')
  t.same([atLimit.body.count, atLimit.body.sequences], [3, [2, 4, 5]])

  const next = await claim(url, id, 'veteran')
  t.equal(next.status, 201, 'two of three: one more is allowed')
  t.equal(next.body.sequence, 5)
  const record = await redis.hget(keys.users(id), 'veteran')
  t.equal(record, `3;1:${a}:1700000000000,3:${b}:1700000000001,5:${next.body.claimId}:${parseUserRecord(record).claims[2]!.claimedAt}`, 'rewritten with its count header')
  const again = await claim(url, id, 'veteran')
  t.same([again.status, again.body.count], [409, 3])

  // A re-sent script finds its claim in an old record too.
  const client = createRedis(config, { log: console, commandTimeoutMs: config.REDIS_COMMAND_TIMEOUT_MS })
  t.teardown(() => client.quit())
  defineScripts(client)
  const resent = await runClaim(client, keys, { campaignId: id, userId: 'full', claimId: (await redis.hget(keys.users(id), 'full'))!.split(',')[1]!.split(':')[1]!, idempotencyTtlS: 60 })
  t.match(resent.outcome, { kind: 'issued', sequence: 4, claimedAt: 1 })
  t.equal(await redis.hget(keys.campaign(id), 'issued'), '5')
})
