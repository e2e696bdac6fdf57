/** Reconcile's membership structures: exact across word boundaries and growth, fingerprints never 0. */
import t from 'tap'
import { SeqBitset, SeqFingerprints, fingerprint } from '../../src/reconcile/bitset.js'

t.test('SeqBitset: add, has, delete, max and count across words and growth', async (t) => {
  const b = new SeqBitset(10)
  t.equal(b.max(), 0, 'empty: max 0')
  t.equal(b.count(), 0)
  const seqs = [1, 31, 32, 33, 63, 64, 1000, 100_000]
  for (const s of seqs) b.add(s)
  for (const s of seqs) t.ok(b.has(s), `has ${s}`)
  for (const s of [0, 2, 30, 34, 999, 1001, 99_999, 100_001, -1]) t.notOk(b.has(s), `not ${s}`)
  t.equal(b.max(), 100_000, 'grew to hold the largest')
  t.equal(b.count(), seqs.length)
  b.add(32)
  t.equal(b.count(), seqs.length, 'adding twice counts once')
  b.delete(100_000)
  b.delete(5_000_000)
  t.equal(b.max(), 1000)
  t.equal(b.count(), seqs.length - 1)
  t.throws(() => b.add(-1), RangeError)
  t.throws(() => b.add(1.5), RangeError)
})

t.test('SeqBitset: a dense million stays ~125 KB and counts exactly', async (t) => {
  const b = new SeqBitset(1_000_000)
  for (let s = 1; s <= 1_000_000; s++) b.add(s)
  t.equal(b.count(), 1_000_000)
  t.equal(b.max(), 1_000_000)
  t.ok(b.bytes <= 125_008, `${b.bytes} bytes`)
})

t.test('SeqFingerprints and fingerprint()', async (t) => {
  const f = new SeqFingerprints(4)
  t.equal(f.get(3), 0, 'unset reads 0')
  f.set(5_000, fingerprint('claim-a'))
  t.equal(f.get(5_000), fingerprint('claim-a'), 'grows on demand')
  t.equal(f.get(10_000_000), 0)
  t.not(fingerprint('claim-a'), fingerprint('claim-b'))
  t.equal(fingerprint('claim-a'), fingerprint('claim-a'), 'deterministic')
  // 0 means "none": no id may hash to it.
  let zeros = 0
  for (let i = 0; i < 20_000; i++) if (fingerprint(`id-${i}`) === 0) zeros++
  t.equal(zeros, 0, 'no fingerprint is 0 over 20,000 ids')
})
