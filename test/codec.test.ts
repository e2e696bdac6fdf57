/**
 * The users record and stream entry formats, current and old, as every reader sees them: the worker's
 * parse, reconcile's stream and record scans, the dead-letter field map.
 */
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'
import { encodeClaimEntry, encodeUserRecord, entryFields, parseUserRecord, rawClaim } from '../src/redis/codec.js'
import { parseEntry } from '../src/worker/entry.js'
import { parseRecord, scanStream } from '../src/reconcile/sources.js'
import { deleteKeys } from './helper.js'

const row = { claimId: randomUUID(), campaignId: '42', userId: 'user:with:colons,and,commas\ttab', sequence: 7, claimedAt: 1_700_000_000_123 }
const oldFields = ['claimId', row.claimId, 'campaignId', row.campaignId, 'userId', row.userId, 'sequence', String(row.sequence), 'claimedAt', String(row.claimedAt)]

t.test('stream entry: compact and old five-field entries decode to the same row', async (t) => {
  const compact = encodeClaimEntry(row)
  t.equal(compact.length, 2, 'one field')
  t.equal(compact[0], 'c', 'its name is the entry type')
  for (const list of [compact, oldFields]) {
    t.same(parseEntry({ stream: 's', id: '1-0', raw: list, deliveries: 1 }), row)
    t.same(entryFields(list), { claimId: row.claimId, campaignId: '42', userId: row.userId, sequence: '7', claimedAt: String(row.claimedAt) }, 'dead letters keep the expanded fields')
  }
  t.equal(rawClaim(['x', 'something else']), null, 'an unknown type is not read as a claim')
  t.equal(parseEntry({ stream: 's', id: '1-0', raw: ['x', '1:2:3:4:5'], deliveries: 1 }), 'not a claim entry')
  t.match(parseEntry({ stream: 's', id: '1-0', raw: ['c', 'garbage'], deliveries: 1 }), /^bad claimId/)
  t.equal(parseEntry({ stream: 's', id: '1-0', raw: null, deliveries: 1 }), 'entry deleted while pending')
})

t.test('users record: count header, marks, and old records without a header', async (t) => {
  const a = { sequence: 1, claimId: randomUUID(), claimedAt: 10 }
  const b = { sequence: 3, claimId: randomUUID(), claimedAt: 11, mark: 'x' }
  const rec = encodeUserRecord([a, b])
  t.equal(rec, `1;1:${a.claimId}:10,3:${b.claimId}:11:x`, 'count = unmarked entries')
  t.same(parseUserRecord(rec), { count: 1, claims: [a, b], malformed: [] })
  const { mark: _mark, ...unmarked } = b
  t.same(parseUserRecord(`1:${a.claimId}:10,3:${b.claimId}:11`), { count: 2, claims: [a, unmarked], malformed: [] }, 'old record: count = entries')
  t.same(parseRecord('u', `2;1:${a.claimId}:10,junk`).malformed, ['junk'])
})

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
  const seen = []
  for await (const page of scanStream(redis, stream, '42')) seen.push(...page.claims)
  t.same(seen, [
    { entryId: oldId, claimId: row.claimId, userId: row.userId, sequence: 7, claimedAt: row.claimedAt },
    { entryId: newId, claimId: other.claimId, userId: row.userId, sequence: 8, claimedAt: row.claimedAt },
  ])
})
