/**
 * Every kind of Redis trouble answers a claim 503 BACKEND_UNAVAILABLE with Retry-After within a bounded
 * time, and the process only ever writes JSON log lines (no raw "[ioredis] Unhandled error event").
 * The real entry point (src/server.ts) runs against private redis-servers that the test makes run out of
 * memory, run a busy script, become a read-only replica, lose their master, freeze, reload and die.
 */
import t from 'tap'
import { Redis } from 'ioredis'
import { testEnv, spawnServer, freePort, createCampaign, claim, type Res } from './helper.js'
import { createKeys } from '../src/redis/keys.js'
import { startPrivateRedis } from './private-redis.js'
import { isBackendDown } from '../src/errors.js'
import { isRedisUnavailableReply } from '../src/redis/client.js'

const BOUND_MS = 2500 // REDIS_COMMAND_TIMEOUT_MS (1000) plus generous slack for a loaded CI machine

t.test('unavailable replies are told apart from other errors', async (t) => {
  for (const m of ['OOM command not allowed when used memory > \'maxmemory\'.', 'LOADING Redis is loading the dataset in memory',
    'READONLY You can\'t write against a read only replica.', 'BUSY Redis is busy running a script.',
    'MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to \'no\'.',
    'ERR Error running script (call to f_x): @user_script:57: @user_script: 57: -OOM command not allowed when used memory > \'maxmemory\'.']) {
    t.ok(isRedisUnavailableReply(m), m)
    t.ok(isBackendDown(Object.assign(new Error(m), { name: 'ReplyError' })), `backend down: ${m}`)
  }
  for (const m of ['BUSYGROUP Consumer Group name already exists', 'ERR wrong number of arguments', 'NOSCRIPT No matching script']) {
    t.notOk(isRedisUnavailableReply(m), m)
  }
  t.ok(isBackendDown(new Error('Command timed out')))
})

t.test('OOM, BUSY, READONLY, MASTERDOWN, a frozen, a loading and a dead Redis: 503 + Retry-After, bounded, JSON logs', async (t) => {
  const a = await startPrivateRedis(t)
  const b = await startPrivateRedis(t)
  const { env } = await testEnv(t, { REDIS_COMMAND_TIMEOUT_MS: '1000' }) // the production default
  const port = await freePort()
  const { child, url } = await spawnServer(t, { ...env, REDIS_URL: a.url, RATE_LIMIT_IP_MAX: '0' }, port)
  let output = ''
  child.stdout!.on('data', (d: Buffer) => { output += d.toString() })
  child.stderr!.on('data', (d: Buffer) => { output += d.toString() })
  const id = await createCampaign(url, { name: 'trouble', stock: 1000 })
  let n = 0
  const timedClaim = async (): Promise<Res & { ms: number }> => {
    const started = Date.now()
    const r = await claim(url, id, `u${++n}`)
    return { ...r, ms: Date.now() - started }
  }
  const expect503 = async (what: string) => {
    const r = await timedClaim()
    t.equal(r.status, 503, `${what}: 503 (got ${JSON.stringify(r.body)})`)
    t.equal(r.body.code, 'BACKEND_UNAVAILABLE', `${what}: BACKEND_UNAVAILABLE`)
    t.equal(r.headers.get('retry-after'), '1', `${what}: Retry-After`)
    t.ok(r.ms < BOUND_MS, `${what}: answered in ${r.ms} ms`)
    return r
  }
  const issued = () => a.admin.hget(createKeys(env.KEY_PREFIX!, 8).campaign(id), 'issued').catch(() => null)
  t.equal((await timedClaim()).status, 201)

  // Out of memory (noeviction, memory full): refused, nothing half-written.
  const before = await issued()
  await a.admin.config('SET', 'maxmemory', '1')
  await expect503('OOM')
  await a.admin.config('SET', 'maxmemory', '0')
  t.equal(await issued(), before, 'OOM: issued unchanged')
  t.equal((await timedClaim()).status, 201, 'after OOM: claims again')

  // A script running past busy-reply-threshold: every other command answers BUSY.
  await a.admin.config('SET', 'busy-reply-threshold', '50')
  const hog = new Redis(a.url, { maxRetriesPerRequest: 0 })
  hog.on('error', () => {})
  const hogging = hog.eval('local i = 0 while true do i = i + 1 end', 0).catch(() => 'killed')
  await new Promise((r) => setTimeout(r, 200))
  await expect503('BUSY')
  await a.admin.script('KILL')
  await hogging
  hog.disconnect()
  t.equal((await timedClaim()).status, 201, 'after BUSY: claims again')

  // A read-only replica (as after a failover that left the client on the old master): copy a's data to b,
  // then make a replicate b, so the campaign is there and every write answers READONLY.
  await b.admin.replicaof('127.0.0.1', a.port)
  await waitFor(async () => /master_link_status:up/.test(await b.admin.info('replication')))
  await b.admin.replicaof('NO', 'ONE')
  await a.admin.replicaof('127.0.0.1', b.port)
  await waitFor(async () => /master_link_status:up/.test(await a.admin.info('replication')))
  await expect503('READONLY')

  // The replica's master is gone and stale data must not be served: MASTERDOWN.
  await a.admin.config('SET', 'replica-serve-stale-data', 'no')
  await b.stop()
  await waitFor(async () => /master_link_status:down/.test(await a.admin.info('replication')))
  await expect503('MASTERDOWN')
  await a.admin.replicaof('NO', 'ONE')
  await a.admin.config('SET', 'replica-serve-stale-data', 'yes')
  t.equal((await timedClaim()).status, 201, 'after MASTERDOWN: claims again')

  // Frozen (SIGSTOP): the connection stays up, nothing answers; the command timeout answers instead.
  a.child.kill('SIGSTOP')
  await expect503('frozen Redis')
  a.child.kill('SIGCONT')
  await waitFor(async () => (await timedClaim()).status === 201)

  // Loading a dataset after a restart (slowed down per key), then dead: 503 throughout, within the bound.
  const filler = a.admin.pipeline()
  for (let i = 0; i < 20_000; i++) filler.set(`filler:${i}`, 'x')
  await filler.exec()
  await a.admin.save()
  await a.stop()
  await expect503('Redis down')
  await a.restart(['--key-load-delay', '200'])
  await expect503('Redis loading')
  await waitFor(async () => (await timedClaim()).status === 201, 30_000)

  t.notMatch(output, /Unhandled error event/, 'no raw ioredis lines')
  const lines = output.split('\n').filter((l) => l.trim() !== '')
  const notJson = lines.filter((l) => { try { JSON.parse(l); return false } catch { return true } })
  t.same(notJson, [], 'every log line is JSON')
  t.match(output, /redis connection error/, 'connection errors logged through pino')
})

async function waitFor(fn: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms
  for (;;) {
    try { if (await fn()) return } catch { /* not yet */ }
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await new Promise((r) => setTimeout(r, 100))
  }
}
