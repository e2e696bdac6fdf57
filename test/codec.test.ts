/** Reconcile's stream read over both entry formats, on a real Redis (the pure codec tests: test/unit/codec.test.ts). */
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'
import { encodeClaimEntry, encodeEventEntry } from '../src/redis/stream-entry.js'
import { scanStream } from '../src/reconcile/sources.js'
import { deleteKeys } from './helper.js'

const row = { claimId: randomUUID(), campaignId: '42', userId: 'user:with:colons,and,commas\ttab', sequence: 7, claimedAt: 1_700_000_000_123 }
const oldFields = ['claimId', row.claimId, 'campaignId', row.campaignId, 'userId', row.userId, 'sequence', String(row.sequence), 'claimedAt', String(row.claimedAt)]

t.test('reconcile reads a stream holding both formats', async (t) => {
  const redis = new Redis(process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379')
  const prefix = `codec${randomUUID().slice(0, 8)}`
  t.teardown(async () => { await deleteKeys(redis, `${prefix}:*`); redis.disconnect() })
  const stream = `${prefix}:{p0}:claims`
  const other = { ...row, claimId: randomUUID(), sequence: 8 }
  const oldId = await redis.xadd(stream, '*', ...oldFields)
  const newId = await redis.xadd(stream, '*', ...encodeClaimEntry(other))
  await redis.xadd(stream, '*', ...encodeClaimEntry({ ...row, campaignId: '43', claimId: randomUUID() }))
  await redis.xadd(stream, '*', 'x', 'an event type this reader does not know')
  const evId = await redis.xadd(stream, '*', ...encodeEventEntry('cancel', other, other.claimedAt + 1))
  const seen = []
  for await (const page of scanStream(redis, stream, '42')) seen.push(...page.claims)
  t.same(seen, [
    { entryId: oldId, claimId: row.claimId, userId: row.userId, sequence: 7, claimedAt: row.claimedAt },
    { entryId: newId, claimId: other.claimId, userId: row.userId, sequence: 8, claimedAt: row.claimedAt },
    { entryId: evId, claimId: other.claimId, userId: row.userId, sequence: 8, claimedAt: row.claimedAt, type: 'cancel' },
  ])
})
