/**
 * reconcile with the real worker (issue 3) draining the streams as a child process:
 * a clean campaign after the drain, and LOST claims re-enqueued by --fix and then persisted once each.
 */
import t from 'tap'
import { testEnv, startApp, createCampaign, claim, countBy } from './helper.js'
import { drained, keysOf, rowsOf, runReconcile, startWorker, streamEntries } from './reconcile-helper.js'
import { stopProcess } from './process.js'

t.test('reconcile with the worker', async (t) => {
  const env = await testEnv(t, { RATE_LIMIT_IP_MAX: '0', RATE_LIMIT_USER_MAX: '0' })
  const { url } = await startApp(t, env.config)
  const keys = keysOf(env)

  await t.test('a campaign the worker drained is clean', async (t) => {
    const id = await createCampaign(url, { name: 'drained', stock: 300 })
    const worker = await startWorker(t, env, 'w-clean')
    const res = await Promise.all(Array.from({ length: 300 }, (_, i) => claim(url, id, `u${i}`)))
    t.same(countBy(res, (r) => r.status), { 201: 300 })
    await drained(env, id, 300)
    await stopProcess(worker)
    const run = await runReconcile(env.env, ['--campaign', id, '--json'])
    t.equal(run.code, 0)
    const c = run.json!.campaigns[0]!
    t.equal(c.drift, 0)
    for (const [name, cls] of Object.entries(c.classes)) t.equal(cls.count, 0, `${name} empty`)
  })

  await t.test('claims removed from the stream before any worker: LOST, re-enqueued, persisted once', async (t) => {
    const id = await createCampaign(url, { name: 'lost', stock: 200 })
    const res = await Promise.all(Array.from({ length: 200 }, (_, i) => claim(url, id, `v${i}`)))
    t.same(countBy(res, (r) => r.status), { 201: 200 })
    const removed = (await streamEntries(env.redis, keys, id)).filter((e) => e.sequence % 4 === 0)
    t.equal(removed.length, 50)
    await env.redis.xdel(keys.streamOf(id), ...removed.map((e) => e.entryId))

    const found = await runReconcile(env.env, ['--campaign', id, '--json'])
    t.equal(found.code, 1)
    t.equal(found.json!.campaigns[0]!.classes.lost.count, 50)
    t.equal(found.json!.campaigns[0]!.classes.inFlight.count, 150)

    const fixed = await runReconcile(env.env, ['--campaign', id, '--fix', '--json'])
    t.equal(fixed.code, 0)
    t.equal(fixed.json!.campaigns[0]!.classes.lost.fixed, 50)

    const worker = await startWorker(t, env, 'w-lost')
    await drained(env, id, 200)
    await stopProcess(worker)
    const rows = await rowsOf(env.sql, id)
    t.same(rows.map((r) => r.sequence), Array.from({ length: 200 }, (_, i) => i + 1), 'each sequence stored once')
    const issuedIds = new Set(res.map((r) => r.body.claimId as string))
    t.ok(rows.every((r) => issuedIds.has(r.claim_id)), 'every row is a claim the API issued, with its own id')
    const after = await runReconcile(env.env, ['--campaign', id, '--json'])
    t.equal(after.code, 0, 'clean once the worker drained the re-enqueued claims')
    t.equal(after.json!.campaigns[0]!.drift, 0)
  })
})
