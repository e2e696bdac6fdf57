/**
 * Eviction: an evicting maxmemory-policy makes every role refuse to start and the API's /readyz fail (also
 * when the policy changes under a running instance); keys evicted earlier are evidence that reconcile
 * reports as its own class (exit 1) and --fix refuses to rebuild from (the repro: allkeys-lru,
 * answered claims, memory pressure evicts the campaign; --fix used to rebuild it from 0 rows).
 */
import t from 'tap'
import { testEnv, startApp, http, createCampaign, claim } from './helper.js'
import { startPrivateRedis } from './private-redis.js'
import { claimMany } from './worker-helper.js'
import { reconcileIn } from './reconcile-helper.js'
import { createKeys } from '../src/redis/keys.js'
import { formatCampaign, formatSummary } from '../src/reconcile/format.js'
import { entryArgs, runToEnd } from './process.js'

async function run(entry: string, env: Record<string, string>,
  args: string[] = []): Promise<{ code: number | null; out: string }> {
  const r = await runToEnd(process.execPath, [...entryArgs(entry.replace(/\.ts$/, '')), ...args],
    { ...env, LOG_LEVEL: 'info', WORKER_METRICS_PORT: '-1' })
  return { code: r.code, out: r.stdout + r.stderr }
}

t.test('allkeys-lru: API, worker, reconcile and retry-failed refuse to start, saying why', async (t) => {
  const r = await startPrivateRedis(t, ['--maxmemory-policy', 'allkeys-lru'])
  const { env } = await testEnv(t)
  const e = { ...env, REDIS_URL: r.url, PORT: '0' }
  // One after another: four process start-ups at once crawl on a busy two-core machine.
  const api = await run('src/server.ts', e)
  const worker = await run('src/worker/main.ts', e)
  const reconcile = await run('scripts/reconcile.ts', e)
  const retry = await run('scripts/retry-failed.ts', e)
  const why = /maxmemory-policy is \\?"allkeys-lru\\?"/
  t.equal(api.code, 1, 'API exits 1')
  t.match(api.out, why)
  t.notMatch(api.out, /Server listening/)
  t.equal(worker.code, 1, 'worker exits 1')
  t.match(worker.out, why)
  t.equal(reconcile.code, 2, 'reconcile exits 2')
  t.match(reconcile.out, why)
  t.equal(retry.code, 1, 'retry-failed exits 1')
  t.match(retry.out, why)
})

t.test('a policy changed at run time fails /readyz and refuses claims; noeviction again makes it ready', async (t) => {
  const r = await startPrivateRedis(t)
  const { config } = await testEnv(t, { RATE_LIMIT_USER_MAX: '0' })
  const { url } = await startApp(t, { ...config, REDIS_URL: r.url, READY_TIMEOUT_MS: 1000,
    REDIS_POLICY_CHECK_INTERVAL_MS: 250 })
  const keys = createKeys(config.KEY_PREFIX, config.STREAM_PARTITIONS)
  await readyzUntil(url, 200)
  const id = await createCampaign(url, { name: 'evict', stock: 100 })
  t.equal((await claim(url, id, 'before')).status, 201, 'noeviction: claims answer 201')
  await r.admin.config('SET', 'maxmemory-policy', 'volatile-lru')
  const bad = await http(`${url}/readyz`)
  t.equal(bad.status, 503)
  t.equal(bad.body.code, 'NOT_READY')
  t.match(bad.body.checks.eviction, /maxmemory-policy is "volatile-lru"/)
  // Within a check interval the claim route refuses too (not only /readyz): nothing issued meanwhile.
  let refused: Awaited<ReturnType<typeof claim>> | undefined
  for (let i = 0; i < 100 && !refused; i++) {
    const c = await claim(url, id, `during${i}`)
    if (c.status === 503) refused = c
    else await new Promise((res) => setTimeout(res, 50))
  }
  t.ok(refused, 'claims answer 503 once the evicting policy is seen')
  t.equal(refused?.body.code, 'BACKEND_UNAVAILABLE')
  t.match(refused?.body.message, /maxmemory-policy is "volatile-lru"/)
  t.ok(refused?.headers.get('retry-after'), 'with Retry-After')
  const issuedThen = Number(await r.admin.hget(keys.campaign(id), 'issued'))
  for (let i = 0; i < 20; i++) t.equal((await claim(url, id, `refused${i}`)).status, 503)
  t.equal(Number(await r.admin.hget(keys.campaign(id), 'issued')), issuedThen, 'no claim issued while refused')
  await r.admin.config('SET', 'maxmemory-policy', 'noeviction')
  await readyzUntil(url, 200)
  let again = 0
  for (let i = 0; i < 100 && again !== 201; i++) {
    again = (await claim(url, id, `after${i}`)).status
    if (again !== 201) await new Promise((res) => setTimeout(res, 50))
  }
  t.equal(again, 201, 'noeviction again: claims answer 201')
})

/** Polls /readyz (each probe is bounded by READY_TIMEOUT_MS; a loaded machine may need a few). */
async function readyzUntil(url: string, want: number): Promise<void> {
  let last
  for (let i = 0; i < 100; i++) {
    last = await http(`${url}/readyz`)
    if (last.status === want) return
    await new Promise((r) => setTimeout(r, 200))
  }
  throw new Error(`/readyz never answered ${want}: ${JSON.stringify(last?.body)}`)
}

t.test('evicted campaign: reconcile reports eviction, exit 1, and --fix rebuilds nothing', async (t) => {
  const r = await startPrivateRedis(t)
  const env = await testEnv(t, { RATE_LIMIT_IP_MAX: '0', RATE_LIMIT_USER_MAX: '0' })
  const config = { ...env.config, REDIS_URL: r.url }
  const priv = { ...env, config }
  const keys = createKeys(config.KEY_PREFIX, config.STREAM_PARTITIONS)
  const { url } = await startApp(t, config)
  const id = await createCampaign(url, { name: 'evicted', stock: 3000 })
  const statuses = await claimMany(url, id, Array.from({ length: 300 }, (_, i) => `user-${i}`), 20)
  t.same(statuses, { 201: 300 }, '300 answered claims, none persisted (no worker)')

  // Memory pressure under allkeys-lru: fill until the campaign's live state is evicted.
  await r.admin.config('SET', 'maxmemory-policy', 'allkeys-lru')
  const used = Number(/used_memory:(\d+)/.exec(await r.admin.info('memory'))![1])
  await r.admin.config('SET', 'maxmemory', String(used + 256 * 1024))
  for (let i = 0; i < 400 && (await r.admin.exists(keys.campaign(id))); i++) {
    const p = r.admin.pipeline()
    for (let j = 0; j < 50; j++) p.set(`filler:${i}:${j}`, 'x'.repeat(1024))
    await p.exec()
  }
  t.equal(await r.admin.exists(keys.campaign(id)), 0, 'the campaign hash was evicted')
  await r.admin.config('SET', 'maxmemory-policy', 'noeviction')
  await r.admin.config('SET', 'maxmemory', '0')

  const check = await reconcileIn(priv)
  t.equal(check.exitCode, 1)
  t.ok(check.evictedKeys! > 0, `evicted_keys reported (${check.evictedKeys})`)
  const c = check.campaigns.find((x) => x.campaignId === id)!
  t.equal(c.classes.evicted.count, 1, 'eviction is its own class')
  t.match(formatSummary({ ...check, elapsedMs: 0, peakRssBytes: 0 }), /evicted/)

  const fix = await reconcileIn(priv, { fix: true })
  t.equal(fix.exitCode, 1, '--fix does not end clean')
  const f = fix.campaigns.find((x) => x.campaignId === id)!
  t.equal(f.classes.liveStateMissing.fixed, 0, 'nothing counted as fixed')
  t.ok(f.remaining! > 0)
  t.equal(await r.admin.exists(keys.campaign(id)), 0, 'the campaign was not rebuilt from 0 rows')
  const text = formatCampaign(f, true) + '\n' + formatSummary({ ...fix, elapsedMs: 0, peakRssBytes: 0 })
  t.notMatch(text, /all fixed|all drift fixed/)
  t.match(text, /NOT repaired/)
  // Claims keep being refused (503) rather than handed out again from sequence 1.
  const after = await http(`${url}/v1/campaigns/${id}/claims`,
    { method: 'POST', token: (await import('./helper.js')).userToken('late') })
  t.equal(after.status, 503)
})
