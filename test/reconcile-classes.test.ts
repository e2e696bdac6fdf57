/**
 * reconcile against hand-made states of every class, through the real API, Redis and PostgreSQL.
 * The "persisted" states are made by copying stream entries into claims and deleting them (what a
 * drained worker leaves), so these tests do not depend on the worker; reconcile-worker.test.ts runs it.
 */
import t, { type Test } from 'tap'
import { randomUUID } from 'node:crypto'
import { testEnv, startApp, createCampaign, claim, freePort } from './helper.js'
import { keysOf, reconcileIn, runReconcile, persistByHand, snapshot, streamEntries,
  rowsOf } from './reconcile-helper.js'

t.test('reconcile finds and repairs each class', async (t) => {
  const env = await testEnv(t, { RATE_LIMIT_IP_MAX: '0', RATE_LIMIT_USER_MAX: '0' })
  const { url } = await startApp(t, env.config)
  const keys = keysOf(env)
  const { redis, sql } = env
  // Small pages so every walk spans many pages.
  const check = (id: string, fix = false) => reconcileIn(env, { campaignId: id, fix, pageSize: 3 })

  async function campaignWith(users: number, body: Record<string, unknown> = {}) {
    const id = await createCampaign(url, { name: `c${randomUUID().slice(0, 6)}`, stock: 50, ...body })
    const res = await Promise.all(Array.from({ length: users }, (_, i) => claim(url, id, `u${i + 1}`)))
    for (const r of res) if (r.status !== 201) throw new Error(`claim failed ${r.status}`)
    const seqOf = Object.fromEntries(res.map((r) => [r.body.userId, r.body.sequence as number]))
    const userAt = Object.fromEntries(res.map((r) => [r.body.sequence as number, r.body.userId as string]))
    return { id, seqOf, userAt }
  }

  /** A second --fix must find nothing and change nothing. */
  async function secondFixIsNoop(t: Test, id: string) {
    const before = await snapshot(redis, keys, id)
    const again = await check(id, true)
    t.equal(again.campaigns[0]!.drift, 0, 'second run finds no drift')
    t.equal(again.exitCode, 0)
    t.same(await snapshot(redis, keys, id), before, 'second --fix changed nothing in Redis')
  }

  await t.test('in flight and persisted claims agree', async (t) => {
    const { id } = await campaignWith(12)
    await persistByHand(redis, sql, keys, id, (e) => e.sequence <= 8)
    const run = await check(id)
    t.equal(run.exitCode, 0)
    const c = run.campaigns[0]!
    t.equal(c.drift, 0)
    t.equal(c.classes.inFlight.count, 4)
    t.equal(c.persisted, 8)
    t.equal(c.issued, 12)
  })

  await t.test('LOST: entries gone from the stream before any worker', async (t) => {
    const { id } = await campaignWith(10)
    await persistByHand(redis, sql, keys, id, (e) => e.sequence <= 4)
    const gone = (await streamEntries(redis, keys, id)).filter((e) => e.sequence >= 8)
    await redis.xdel(keys.streamOf(id), ...gone.map((e) => e.entryId))
    const run = await check(id)
    t.equal(run.exitCode, 1)
    const c = run.campaigns[0]!
    t.equal(c.classes.lost.count, 3)
    t.equal(c.classes.inFlight.count, 3)
    t.same(c.classes.lost.examples.map((e) => e.claimId).sort(), gone.map((e) => e.claimId).sort(),
      'examples name the lost claims')
    t.equal(c.drift, 3)

    const fixed = await check(id, true)
    t.equal(fixed.exitCode, 0)
    t.equal(fixed.campaigns[0]!.classes.lost.fixed, 3)
    t.equal(fixed.campaigns[0]!.remaining, 0)
    const back = (await streamEntries(redis, keys, id)).filter((e) => e.sequence >= 8)
    t.same(back.map(({ claimId, userId, sequence, claimedAt }) => ({ claimId, userId, sequence, claimedAt })),
      gone.map(({ claimId, userId, sequence, claimedAt }) => ({ claimId, userId, sequence,
        claimedAt })), 're-enqueued with the same claim, user, sequence and time')
    await secondFixIsNoop(t, id)
    await persistByHand(redis, sql, keys, id)
    t.same((await rowsOf(sql, id)).map((r) => r.sequence), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 'each claim stored once')
    t.equal((await check(id)).exitCode, 0)
  })

  await t.test('Redis lost data: user records gone and issued behind the rows', async (t) => {
    const { id, userAt } = await campaignWith(20)
    await persistByHand(redis, sql, keys, id)
    const original = await redis.hgetall(keys.users(id))
    await redis.hdel(keys.users(id), userAt[2]!, userAt[3]!, userAt[4]!)
    await redis.hdel(keys.users(id), userAt[17]!, userAt[18]!, userAt[19]!, userAt[20]!)
    await redis.hset(keys.campaign(id), 'issued', 16)
    const run = await check(id)
    t.equal(run.exitCode, 1)
    const c = run.campaigns[0]!
    t.equal(c.classes.redisLost.count, 7, 'three records missing below issued, four rows beyond it')
    t.equal(c.classes.lost.count, 0)
    t.equal(c.classes.gaps.count, 0)
    t.ok(c.classes.redisLost.examples.length > 0 && c.classes.redisLost.examples.length <= 5)

    const fixed = await check(id, true)
    t.equal(fixed.exitCode, 0)
    t.equal(fixed.campaigns[0]!.classes.redisLost.fixed, 7)
    t.same(await redis.hgetall(keys.users(id)), original, 'records restored exactly')
    t.equal(await redis.hget(keys.campaign(id), 'issued'), '20', 'issued raised over the rows')
    t.equal((await claim(url, id, userAt[3]!)).body.code, 'ALREADY_CLAIMED', 'a restored user is at their limit')
    t.equal((await claim(url, id, 'fresh')).body.sequence, 21, 'the next claim continues after the rows')
    await secondFixIsNoop(t, id)
  })

  await t.test('counter behind its own records', async (t) => {
    const { id } = await campaignWith(6)
    await redis.hset(keys.campaign(id), 'issued', 4)
    const run = await check(id)
    t.equal(run.exitCode, 1)
    const c = run.campaigns[0]!
    t.equal(c.classes.counters.count, 1)
    t.match(c.classes.counters.examples[0]!.detail, /issued 4 is below the highest sequence Redis holds \(6\)/)
    t.equal((await check(id, true)).exitCode, 0)
    t.equal(await redis.hget(keys.campaign(id), 'issued'), '6')
    t.equal((await claim(url, id, 'next')).body.sequence, 7)
    await secondFixIsNoop(t, id)
  })

  await t.test('live state missing: rebuilt from rows and stream', async (t) => {
    const opensAt = new Date(Date.now() - 60_000)
    const closesAt = new Date(Date.now() + 3_600_000)
    const { id, userAt } = await campaignWith(10,
      { stock: 12, perUserLimit: 1, opensAt: opensAt.toISOString(), closesAt: closesAt.toISOString() })
    await persistByHand(redis, sql, keys, id, (e) => e.sequence <= 7)
    const before = await redis.hgetall(keys.campaign(id))
    await redis.del(keys.campaign(id))
    t.equal((await claim(url, id, 'late')).status, 503)
    const run = await check(id)
    t.equal(run.exitCode, 1)
    t.equal(run.campaigns[0]!.classes.liveStateMissing.count, 1)
    t.equal(run.campaigns[0]!.issued, null)
    t.equal(run.campaigns[0]!.classes.inFlight.count, 3)

    const fixed = await check(id, true)
    t.equal(fixed.exitCode, 0)
    t.same(await redis.hgetall(keys.campaign(id)), before, 'hash rebuilt field for field, issued = highest sequence')
    t.same(before.opensAt, String(opensAt.getTime()))
    t.equal((await claim(url, id, userAt[5]!)).body.code, 'ALREADY_CLAIMED')
    t.equal((await claim(url, id, 'late')).body.sequence, 11)
    t.equal((await claim(url, id, 'later')).body.sequence, 12)
    t.equal((await claim(url, id, 'too-late')).body.code, 'SOLD_OUT')
    await secondFixIsNoop(t, id)
  })

  await t.test('stock and settings behind the database are raised; stock above it is only reported', async (t) => {
    const { id } = await campaignWith(3, { stock: 5 })
    await sql`UPDATE campaigns SET stock = 9, per_user_limit = 2, name = 'renamed' WHERE id = ${id}`
    const run = await check(id)
    t.equal(run.exitCode, 1)
    t.equal(run.campaigns[0]!.classes.counters.count, 3)
    t.equal((await check(id, true)).exitCode, 0)
    t.match(await redis.hgetall(keys.campaign(id)), { stock: '9', perUserLimit: '2', name: 'renamed', issued: '3' })
    await secondFixIsNoop(t, id)

    await redis.hset(keys.campaign(id), 'stock', 30)
    const high = await check(id, true)
    t.equal(high.exitCode, 1, 'not fixable: never lowered')
    t.equal(high.campaigns[0]!.remaining, 1)
    t.match(high.campaigns[0]!.classes.counters.examples[0]!.detail, /stock in Redis 30 > stock in the database 9/)
    t.equal(await redis.hget(keys.campaign(id), 'stock'), '30')
  })

  await t.test('dead-lettered claims are reported, not re-enqueued', async (t) => {
    const { id } = await campaignWith(3)
    const [entry] = (await streamEntries(redis, keys, id)).filter((e) => e.sequence === 2)
    await persistByHand(redis, sql, keys, id, (e) => e.sequence !== 2)
    await redis.xdel(keys.streamOf(id), entry!.entryId)
    await sql`INSERT INTO failed_claims (stream, entry_id, fields, error, attempts)
      VALUES (${keys.streamOf(id)}, ${entry!.entryId},
        ${sql.json({ claimId: entry!.claimId, campaignId: id, userId: entry!.userId, sequence: String(entry!.sequence),
          claimedAt: String(entry!.claimedAt) })}, 'boom', 5)`
    const run = await check(id, true)
    const c = run.campaigns[0]!
    t.equal(c.classes.deadLettered.count, 1)
    t.equal(c.classes.lost.count, 0)
    t.equal(run.exitCode, 1)
    t.equal(c.remaining, 1)
    t.same(await streamEntries(redis, keys, id), [], 'nothing re-enqueued')
    await sql`UPDATE failed_claims SET resolved_at = now()`
    await sql`INSERT INTO claims (claim_id, campaign_id, user_id, sequence, claimed_at) VALUES (${entry!.claimId}, ${id}, ${entry!.userId}, 2, now())`
    t.equal((await check(id)).exitCode, 0, 'clean once retry-failed stored it')
  })

  await t.test('conflict: a row and a Redis claim share a sequence', async (t) => {
    const { id } = await campaignWith(2)
    await persistByHand(redis, sql, keys, id, (e) => e.sequence === 1)
    await sql`INSERT INTO claims (claim_id, campaign_id, user_id, sequence, claimed_at) VALUES (${randomUUID()}, ${id}, 'intruder', 2, now())`
    const before = await snapshot(redis, keys, id)
    const run = await check(id, true)
    const c = run.campaigns[0]!
    t.equal(c.classes.conflicts.count, 1)
    t.equal(c.classes.conflicts.examples[0]!.userId, 'intruder')
    t.equal(c.classes.redisLost.count, 0, 'not restored over another claim')
    t.equal(run.exitCode, 1)
    // Issue 19: the row's holder gets its claim back in its own record (its per-user limit stays closed); the
    // sequence stays a conflict, and nothing else changes.
    const after = await snapshot(redis, keys, id)
    const { intruder, ...others } = after.users
    t.same({ ...after, users: others }, before, 'nothing else changed')
    const [row] = await sql`SELECT claim_id FROM claims WHERE user_id = 'intruder'`
    t.match(intruder, `:${row!.claim_id}:`, 'the conflicting row\'s holder is back in its own record')
    const [first] = await streamEntries(redis, keys, id)
    await redis.hset(keys.users(id), 'twin', `1:${randomUUID()}:${first!.claimedAt}`)
    const twin = await check(id)
    t.equal(twin.campaigns[0]!.classes.conflicts.count, 2, 'two Redis records at one sequence is a conflict too')
  })

  await t.test('gap: a sequence issued and held by nothing', async (t) => {
    const { id, userAt } = await campaignWith(5)
    await persistByHand(redis, sql, keys, id)
    await sql`DELETE FROM claims WHERE campaign_id = ${id} AND sequence = 3`
    await redis.hdel(keys.users(id), userAt[3]!)
    const run = await check(id, true)
    const c = run.campaigns[0]!
    t.equal(c.classes.gaps.count, 1)
    t.equal(c.classes.gaps.examples[0]!.sequence, 3)
    t.equal(c.classes.lost.count, 0)
    t.equal(run.exitCode, 1, 'cannot be fixed: nobody knows who held it')
  })

  await t.test('as a process: table, --json, exit codes', async (t) => {
    const { id } = await campaignWith(4)
    await persistByHand(redis, sql, keys, id)
    const clean = await runReconcile(env.env, ['--campaign', id])
    t.equal(clean.code, 0, clean.stderr)
    t.match(clean.stdout, new RegExp(`campaign ${id} .*agrees`))
    t.match(clean.stdout, /in flight \(ok\)\s+0/)

    await redis.hdel(keys.users(id), 'u1')
    const drift = await runReconcile(env.env, ['--campaign', id, '--json'])
    t.equal(drift.code, 1)
    t.equal(drift.json?.exitCode, 1)
    t.equal(drift.json?.campaigns[0]?.classes.redisLost.count, 1)
    t.equal(drift.json?.campaigns[0]?.classes.redisLost.examples[0]?.userId, 'u1')
    t.ok((drift.json?.peakRssBytes ?? 0) > 0)

    const fixed = await runReconcile(env.env, ['--campaign', id, '--fix'])
    t.equal(fixed.code, 0, fixed.stderr)
    t.match(fixed.stdout, /all fixed/)
    const again = await runReconcile(env.env, ['--campaign', id, '--fix', '--json'])
    t.equal(again.code, 0)
    t.equal(again.json?.campaigns[0]?.drift, 0)

    const all = await runReconcile(env.env, ['--json'])
    t.equal(all.json?.campaigns.length, (await sql`SELECT count(*)::int AS n FROM campaigns`)[0]!.n,
      'every campaign checked')
    t.equal(all.code, 1, 'the unfixable classes above remain')

    const bad = await runReconcile(env.env, ['--campaign', 'abc'])
    t.equal(bad.code, 2)
    t.match(bad.stderr, /--campaign must be a campaign id/)
    const long = await runReconcile(env.env, ['--campaign', '1'.repeat(19)])
    t.equal(long.code, 2)
    t.match(long.stderr, /--campaign must be a campaign id/, '19 digits refused as by the API (at most 18)')
    t.equal((await runReconcile(env.env, ['--what'])).code, 2)
    const unknown = await runReconcile(env.env, ['--campaign', '999999', '--json'])
    t.equal(unknown.code, 2)
    t.match(unknown.json?.error, /does not exist/)
    const port = await freePort()
    const down = await runReconcile({ ...env.env, REDIS_URL: `redis://127.0.0.1:${port}` }, ['--campaign', id])
    t.equal(down.code, 2, 'Redis unreachable is an error, not "agrees"')
  })
})
