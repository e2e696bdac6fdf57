/** reconcile's compare step (src/reconcile/inspect.ts): gathered sides in, classes and repairs out, no I/O. */
import t from 'tap'
import { SeqBitset } from '../../src/reconcile/bitset.js'
import { compare, type Sides } from '../../src/reconcile/inspect.js'
import { emptyClasses } from '../../src/reconcile/report.js'

const campaign = { name: 'c', stock: 10, perUserLimit: 1, opensAt: null, closesAt: null, holdSeconds: null }
const bits = (...seqs: number[]) => {
  const b = new SeqBitset(16)
  for (const s of seqs) b.add(s)
  return b
}
const live = (issued: number, extra: Record<string, string> = {}) => ({ name: 'c', stock: '10', perUserLimit: '1',
  opensAt: '', closesAt: '', holdSeconds: '', issued: String(issued), returned: '0', ...extra })

/** The fields of the three groups of Sides, flat (the max sequences are the bitsets' own max()). */
interface Flat {
  raw: Record<string, string> | null; hasLive: boolean; issuedStart: number; issuedEnd: number
  inUsers: SeqBitset; eligible: SeqBitset; inStream: SeqBitset; inDb: SeqBitset; dead: SeqBitset
  restore: SeqBitset; restoreHolders: SeqBitset; conflict: SeqBitset; beyondCounter: SeqBitset
  maxUsersSeq: number; maxStreamSeq: number; maxDbSeq: number
  malformedUsers: number; releasedInUsers: number; unappliedEvents: Sides['found']['unappliedEvents']
}

function sides(over: Partial<Flat>): Sides & { classes: Sides['found']['classes'] } {
  const f: Flat = { raw: live(0), hasLive: true, issuedStart: 0, issuedEnd: 0, inUsers: bits(), eligible: bits(),
    inStream: bits(), inDb: bits(), dead: bits(), restore: bits(), restoreHolders: bits(), conflict: bits(),
    beyondCounter: bits(),
    maxUsersSeq: 0, maxStreamSeq: 0, maxDbSeq: 0, malformedUsers: 0, releasedInUsers: 0, unappliedEvents: [],
    ...over }
  for (const [b, max] of [[f.inUsers, f.maxUsersSeq], [f.inStream, f.maxStreamSeq], [f.inDb, f.maxDbSeq]] as const) {
    if (b.max() !== max) throw new Error(`fixture: max ${max} but the bitset's is ${b.max()}`)
  }
  const classes = emptyClasses()
  return {
    live: { raw: f.raw, hasLive: f.hasLive, issuedStart: f.issuedStart, issuedEnd: f.issuedEnd },
    seen: { users: f.inUsers, eligible: f.eligible, stream: f.inStream, db: f.inDb, dead: f.dead },
    found: { restore: f.restore, restoreHolders: f.restoreHolders, conflict: f.conflict, beyondCounter: f.beyondCounter,
      malformedUsers: f.malformedUsers, releasedInUsers: f.releasedInUsers, unappliedEvents: f.unappliedEvents,
      classes },
    classes,
  }
}

t.test('agreeing sides: no drift, nothing to repair', async (t) => {
  const s = sides({ raw: live(3), issuedStart: 3, issuedEnd: 3, inUsers: bits(1, 2, 3), eligible: bits(1, 2, 3),
    inDb: bits(1, 2, 3), maxUsersSeq: 3, maxDbSeq: 3 })
  const r = compare(s, campaign)
  t.equal(r.lost.count(), 0)
  t.equal(r.needIssued, 3)
  t.equal(r.repairLiveState, false)
  for (const [name, c] of Object.entries(s.classes)) t.equal(c.count, 0, `${name}: 0`)
})

t.test('by sequence: in flight, LOST, dead-lettered and gaps', async (t) => {
  // 1 row; 2 only in the stream (in flight); 3 only in Redis's records (LOST); 4 dead-lettered; 5 nowhere (gap).
  const s = sides({ raw: live(5), issuedStart: 5, issuedEnd: 5, inUsers: bits(1, 2, 3, 4), eligible: bits(1, 2, 3, 4),
    inStream: bits(2), inDb: bits(1), dead: bits(4), maxUsersSeq: 4, maxStreamSeq: 2, maxDbSeq: 1 })
  const r = compare(s, campaign)
  t.same([...Array(6).keys()].filter((q) => r.lost.has(q)), [3])
  t.equal(s.classes.inFlight.count, 1)
  t.equal(s.classes.lost.count, 1)
  t.equal(s.classes.deadLettered.count, 1)
  t.equal(s.classes.gaps.count, 1)
  t.match(s.classes.gaps.examples, [{ sequence: 5 }])
  t.equal(r.needIssued, 4)
})

t.test('live hash against the database: fixable and unfixable counter problems', async (t) => {
  const s = sides({ raw: live(2, { stock: '5', name: 'old' }), issuedStart: 2, issuedEnd: 2, inDb: bits(1, 2, 3),
    maxDbSeq: 3 })
  const r = compare(s, campaign)
  t.equal(r.repairLiveState, true, 'stock below the database, a renamed campaign and rows beyond issued')
  t.equal(r.needIssued, 3)
  t.equal(s.classes.counters.count, 2)
  const over = sides({ raw: live(12, { returned: '0' }), issuedStart: 12, issuedEnd: 12 })
  t.equal(compare(over, campaign).repairLiveState, false, 'oversold in Redis is reported, not repaired')
  t.match(over.classes.counters.examples, [{ detail: /oversold in Redis/ }])
})

t.test('no live state: one liveStateMissing, nothing judged against a counter', async (t) => {
  const s = sides({ raw: null, hasLive: false, issuedEnd: NaN, inDb: bits(1, 2), maxDbSeq: 2 })
  const r = compare(s, campaign)
  t.equal(s.classes.liveStateMissing.count, 1)
  t.equal(s.classes.gaps.count, 0)
  t.equal(r.needIssued, 2)
})
