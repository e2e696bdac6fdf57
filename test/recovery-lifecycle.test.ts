/**
 * A fenced campaign's cancel and confirm are refused like its claims (issue 19): while its live state may
 * lack a claim PostgreSQL holds, "not found" could be false, and a cancel or confirm could act on a state
 * the recovery is about to repair. 503 RECOVERING + Retry-After, nothing changed; once the recovery has
 * restored the claim, the same requests succeed. The test holds the recovery lease itself, so the fence
 * stays up (no instance can repair) for as long as it looks.
 */
import t from 'tap'
import { testEnv, startApp, createCampaign, claim, http, userToken } from './helper.js'
import { keysOf, persistByHand } from './reconcile-helper.js'
import { parseUserRecord } from '../src/redis/users-record.js'
import { waitUntil } from './worker-helper.js'

const env = await testEnv(t, { RATE_LIMIT_IP_MAX: '0', RATE_LIMIT_USER_MAX: '0', RECOVERY_INTERVAL_MS: '60000' })
const keys = keysOf(env)
const { redis } = env
const { url } = await startApp(t, env.config)

t.test('cancel and confirm on a fenced campaign: 503 RECOVERING, nothing changed; after the repair they work',
  async (t) => {
    const id = await createCampaign(url, { name: 'fenced', stock: 10, holdSeconds: 600 })
    const a = await claim(url, id, 'ua')
    const b = await claim(url, id, 'ub')
    t.same([a.status, b.status], [201, 201])
    await persistByHand(redis, env.sql, keys, id)
    // The loss: Redis lost ua's record (PostgreSQL holds it) and restarted (another run_id stamped the hash).
    await redis.hdel(keys.users(id), 'ua')
    await redis.hset(keys.campaign(id), 'node', 'f'.repeat(40))
    await redis.set(keys.recoveryLease(id), 'the-test', 'PX', 60_000)

    const cancelA = await http(`${url}/v1/campaigns/${id}/claims/${a.body.claimId}`,
      { method: 'DELETE', token: userToken('ua') })
    const confirmB = await http(`${url}/v1/campaigns/${id}/claims/${b.body.claimId}/confirm`,
      { method: 'POST', token: userToken('ub') })
    const revokeB = await http(`${url}/admin/campaigns/${id}/claims/${b.body.claimId}`,
      { method: 'DELETE', admin: true })
    for (const [what, r] of [['cancel of a claim Redis lost', cancelA], ['confirm', confirmB],
      ['admin revoke', revokeB]] as const) {
      t.same([r.status, r.body.code], [503, 'RECOVERING'], `${what}: 503 RECOVERING, not 404 or a change`)
      t.ok(r.headers.get('retry-after'), `${what}: Retry-After`)
    }
    const recordB = parseUserRecord((await redis.hget(keys.users(id), 'ub'))!).claims
    t.same(recordB.map((c) => c.mark), ['h'], 'ub still holds an unconfirmed hold')

    await redis.del(keys.recoveryLease(id))
    await waitUntil('the recovery lifted the fence', async () => (await claim(url, id, 'uc')).status === 201, 20_000)
    t.ok(parseUserRecord((await redis.hget(keys.users(id), 'ua'))!).claims.some((c) => c.claimId === a.body.claimId),
      'ua\'s claim is back in its record')
    const cancelAgain = await http(`${url}/v1/campaigns/${id}/claims/${a.body.claimId}`,
      { method: 'DELETE', token: userToken('ua') })
    t.same([cancelAgain.status, cancelAgain.body.status], [200, 'cancelled'], 'the cancel now works')
    const confirmAgain = await http(`${url}/v1/campaigns/${id}/claims/${b.body.claimId}/confirm`,
      { method: 'POST', token: userToken('ub') })
    t.same([confirmAgain.status, confirmAgain.body.status], [200, 'confirmed'], 'the confirm now works')
  })
