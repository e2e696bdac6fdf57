/**
 * Recovery restores users, not only claims (issue 19). The issue's scenario: a promoted replica lacked the
 * last claims its master acknowledged (and the worker persisted), and handed their sequences out again to
 * other users before anything was repaired. PostgreSQL keeps the first holders; Redis gives the sequences
 * to the second ones: conflicts, which need a person. But the first holders' own records must come back
 * all the same, or their per-user limit is open and each of them gets a second 201. Both repairers share
 * reconcile's repair: `reconcile --fix`, and the automatic recovery of a fenced campaign.
 */
import t, { type Test } from 'tap'
import { testEnv, startApp, createCampaign, claim } from './helper.js'
import { keysOf, persistByHand, reconcileIn, streamEntries } from './reconcile-helper.js'
import { parseUserRecord } from '../src/redis/users-record.js'
import { waitUntil } from './worker-helper.js'

const env = await testEnv(t, { RATE_LIMIT_IP_MAX: '0', RATE_LIMIT_USER_MAX: '0' })
const keys = keysOf(env)
const { redis } = env
const { url } = await startApp(t, env.config)

/** 20 first holders persisted; Redis then loses the last 10 and hands their sequences to 10 others. */
async function lossWithConflicts(t: Test, name: string) {
  const id = await createCampaign(url, { name, stock: 100, perUserLimit: 1 })
  for (let i = 0; i < 20; i++) t.equal((await claim(url, id, `${name}-a${i}`)).status, 201, `a${i}: 201`)
  await persistByHand(redis, env.sql, keys, id)
  const lostUsers = Array.from({ length: 10 }, (_, i) => `${name}-a${i + 10}`)
  await redis.hdel(keys.users(id), ...lostUsers)
  await redis.hset(keys.campaign(id), 'issued', 10)
  const second = []
  for (let i = 0; i < 10; i++) second.push(await claim(url, id, `${name}-b${i}`))
  t.same(second.map((r) => r.body.sequence), Array.from({ length: 10 }, (_, i) => i + 11),
    'the lost sequences were handed out again (the conflict the fence now prevents)')
  return { id, lostUsers }
}

async function assertRestored(t: Test, id: string, lostUsers: string[]) {
  const rows = await env.sql`SELECT user_id, claim_id FROM claims WHERE campaign_id = ${id} AND user_id IN
    ${env.sql(lostUsers)}`
  t.equal(rows.length, 10)
  for (const r of rows) {
    const record = parseUserRecord(await redis.hget(keys.users(id), r.user_id as string))
    t.ok(record.claims.some((c) => c.claimId === r.claim_id), `${r.user_id}: claim back in the user's record`)
  }
  const again = await Promise.all(lostUsers.map((u) => claim(url, id, u)))
  t.same(again.map((r) => `${r.status} ${r.body.code}`), lostUsers.map(() => '409 ALREADY_CLAIMED'),
    'no first holder can claim again: the per-user limit stays closed')
}

t.test('reconcile --fix gives conflicted holders their records back', async (t) => {
  const { id, lostUsers } = await lossWithConflicts(t, 'fix')
  const fixed = await reconcileIn(env, { fix: true, campaignId: id })
  const c = fixed.campaigns[0]!
  t.equal(c.classes.conflicts.count, 10, 'ten conflicts found')
  await assertRestored(t, id, lostUsers)
})

t.test('the automatic recovery of a fenced campaign does the same', async (t) => {
  const { id, lostUsers } = await lossWithConflicts(t, 'auto')
  // As after a failover: the hash was verified on another Redis process.
  await redis.hset(keys.campaign(id), 'node', 'a-process-that-is-gone')
  const { url: recovering } = await startApp(t, { ...env.config, RECOVERY_INTERVAL_MS: 200 })
  const fenced = await claim(recovering, id, 'someone')
  t.equal(fenced.status, 503)
  t.equal(fenced.body.code, 'RECOVERING')
  t.ok(Number(fenced.headers.get('retry-after')) >= 1, 'Retry-After')
  await waitUntil('the recovery lifted the fence', async () => (await claim(recovering, id, 'someone')).status === 201)
  // The row is written just after the fence is lifted.
  const rec = await waitUntil('the recovery is recorded', async () =>
    (await env.sql`SELECT found, restored FROM recoveries WHERE campaign_id = ${id}`)[0])
  t.equal(rec!.restored, 10, 'the recovery restored the ten first holders')
  t.same(rec!.found, { conflicts: 10 })
  await assertRestored(t, id, lostUsers)
})

t.test('a row PostgreSQL commits late, below the sequences already restored, comes back too', async (t) => {
  // A worker's batches commit in any order: one read from the failed master may commit after the recovery
  // restored a later one, with a sequence below issued. Seen in test/cluster-failover.test.ts as one claim a
  // campaign missing from its user's record, the counts equal.
  const id = await createCampaign(url, { name: 'late', stock: 100, perUserLimit: 1 })
  for (let i = 0; i < 20; i++) t.equal((await claim(url, id, `late-a${i}`)).status, 201, `a${i}: 201`)
  await persistByHand(redis, env.sql, keys, id, (e) => e.userId !== 'late-a15')
  const [late] = await streamEntries(redis, keys, id)
  t.equal(late?.userId, 'late-a15', 'the one entry whose batch commits late')
  // Lost with the master: the last ten users' records and the late entry; the counter back to 10.
  await redis.xdel(keys.streamOf(id), late!.entryId)
  const lostUsers = Array.from({ length: 10 }, (_, i) => `late-a${i + 10}`)
  await redis.hdel(keys.users(id), ...lostUsers)
  await redis.hset(keys.campaign(id), 'issued', 10, 'node', 'a-process-that-is-gone')

  // The grace the recovery waits for late rows is the statement bound: long enough for the insert below to
  // land inside it on a loaded machine.
  const { url: recovering } = await startApp(t, { ...env.config, RECOVERY_INTERVAL_MS: 200,
    PG_STATEMENT_TIMEOUT_MS: 8000 })
  t.equal((await claim(recovering, id, 'someone')).body.code, 'RECOVERING')
  await waitUntil('the first repair restored the later users', async () =>
    (await redis.hget(keys.users(id), 'late-a19')) !== null)
  t.equal(Number(await redis.hget(keys.campaign(id), 'issued')), 20, 'issued already above the late row')
  await env.sql`INSERT INTO claims (claim_id, campaign_id, user_id, sequence, claimed_at) VALUES (${late!.claimId},
    ${id}, ${late!.userId}, ${late!.sequence}, ${new Date(late!.claimedAt)})`
  await waitUntil('the recovery lifted the fence', async () => (await claim(recovering, id, 'someone')).status === 201)
  const record = parseUserRecord(await redis.hget(keys.users(id), 'late-a15'))
  t.ok(record.claims.some((c) => c.claimId === late!.claimId), 'the late row is back in its user\'s record')
  t.same(`${(await claim(recovering, id, 'late-a15')).status}`, '409', 'its user cannot claim again')
  const report = await reconcileIn(env, { fix: false, campaignId: id })
  t.equal(report.campaigns[0]!.drift, 0, 'reconcile finds nothing left')
})
