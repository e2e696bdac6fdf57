/**
 * 200,000 claims seeded in bulk (no HTTP: this is about reconcile, not the claim path), a few drifted.
 * reconcile runs as the real script with the V8 heap capped at 64 MB, a cap under which merely loading
 * both sides into memory dies (checked below), so passing proves it streams. The young generation is sized
 * explicitly (8 MB semi-spaces, fixed whatever the campaign's size): V8's default for so small a heap is so
 * small that every page is promoted at once and the run spends most of its time in full collections
 * (60 % of its CPU, 4-8x slower, and a higher peak RSS). What survives a page still lands in the capped space.
 */
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { testEnv, ROOT } from './helper.js'
import { keysOf, runReconcile } from './reconcile-helper.js'
import { seedCampaign } from '../bench/reconcile-seed.js'
import { entryArgs } from './process.js'

const CLAIMS = 200_000
const HEAP = ['--max-old-space-size=64', '--max-semi-space-size=8']

t.test('200,000 claims in bounded memory', async (t) => {
  const env = await testEnv(t)
  const keys = keysOf(env)
  const id = await seedCampaign(env.redis, env.sql, keys,
    { claims: CLAIMS, notPersisted: [1, 77_777, CLAIMS], notInRedis: [2, 123_456] })

  const check = await runReconcile(env.env, ['--campaign', id, '--json'], HEAP)
  t.equal(check.code, 1, `drift found under a 64 MB heap ${check.code === 1 ? '' : check.stderr}`)
  const c = check.json!.campaigns[0]!
  t.equal(c.classes.lost.count, 3, 'every LOST claim found')
  t.same(c.classes.lost.examples.map((e) => e.sequence).sort((a, b) => a! - b!), [1, 77_777, CLAIMS])
  t.equal(c.classes.redisLost.count, 2, 'every missing record found')
  t.equal(c.persisted, CLAIMS - 3)
  t.equal(c.drift, 5)
  t.comment(`reconcile of ${CLAIMS} claims: peak RSS ${(check.json!.peakRssBytes / 1048576).toFixed(0)} MB (64 MB heap cap), ${check.json!.elapsedMs} ms (noisy: shared machine)`)

  const fix = await runReconcile(env.env, ['--campaign', id, '--fix', '--json'], HEAP)
  t.equal(fix.code, 0, 'fixed under the same cap')
  t.equal(fix.json!.campaigns[0]!.remaining, 0)
  t.equal(await env.redis.hlen(keys.users(id)), CLAIMS, 'records restored')

  // The control: holding the users hash and the rows at once does not fit under the same cap.
  const naive = spawnSync(process.execPath, [...HEAP, ...entryArgs('bench/reconcile-memory'), '--naive-load', id], {
    cwd: ROOT, env: { ...process.env, ...env.env }, encoding: 'utf8',
  })
  t.not(naive.status, 0, 'loading everything runs out of the 64 MB heap')
  t.match(naive.stderr, /heap out of memory|Allocation failed/)
})
