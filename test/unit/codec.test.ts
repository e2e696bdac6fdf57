/**
 * The users record and stream entry formats, current and old, as every reader sees them: the worker's
 * parse, reconcile's record parse, the dead-letter field map (no services: the stream read is test/codec.test.ts).
 */
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { flatRecord } from '../../src/redis/codec.js'
import { claimState, encodeUserRecord, holdsUnit, parseUserRecord } from '../../src/redis/users-record.js'
import { encodeClaimEntry, encodeEventEntry, entryFields, rawClaim, rawEvent } from '../../src/redis/stream-entry.js'
import { parseEntry, parseFields } from '../../src/worker/entry.js'
import { parseRecord } from '../../src/reconcile/sources.js'

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

t.test('lifecycle entries: a hold carries holdUntil, events carry the whole claim, their time and a reason', async (t) => {
  const hold = { ...row, holdUntil: row.claimedAt + 2000 }
  const h = encodeClaimEntry(hold)
  t.equal(h[0], 'h', 'a hold is its own entry type')
  t.same(parseEntry({ stream: 's', id: '1-0', raw: h, deliveries: 1 }), hold)
  t.equal(rawEvent(h), null, 'a hold is a claim, not an event')
  const k = encodeEventEntry('cancel', hold, row.claimedAt + 500, 'fraud: seen twice, again')
  t.same(k.slice(0, 1).concat(k.slice(2)), ['k', 'r', 'fraud: seen twice, again'], 'type k, the reason in field r')
  t.equal(rawClaim(k), null, 'an event is not read as a claim (claim counts stay right)')
  const parsed = parseEntry({ stream: 's', id: '1-0', raw: k, deliveries: 1 })
  t.same(parsed, { ...hold, event: { kind: 'cancel', at: row.claimedAt + 500, reason: 'fraud: seen twice, again' } })
  // A dead letter keeps the expanded fields; retry-failed reads them back to the same row and event.
  const fields = entryFields(k)
  t.match(fields, { type: 'cancel', claimId: row.claimId, userId: row.userId, holdUntil: String(hold.holdUntil) })
  t.same(parseFields(fields), parsed)
  const e = encodeEventEntry('expire', row, row.claimedAt + 9)
  t.same(e.length, 2, 'no reason, no r field')
  t.same(parseEntry({ stream: 's', id: '1-0', raw: e, deliveries: 1 }), { ...row, event: { kind: 'expire', at: row.claimedAt + 9, reason: null } })
  t.match(parseEntry({ stream: 's', id: '1-0', raw: ['f', '1:2'], deliveries: 1 }), /^bad claimId/)
  t.same(['', 'h', 'f', 'c', 'x'].map((m) => [claimState(m || undefined), holdsUnit(m || undefined)]),
    [['active', true], ['held', true], ['confirmed', true], ['cancelled', false], ['expired', false]])
})

t.test('flatRecord: a flat reply list in pairs, a dangling name ignored', async (t) => {
  t.same(flatRecord(['name', 'g', 'pending', 3, 'lag', null]), { name: 'g', pending: 3, lag: null })
  t.same(flatRecord(['a', '1', 'b']), { a: '1' }, 'an odd trailing name has no value')
  t.same(flatRecord([]), {})
})
