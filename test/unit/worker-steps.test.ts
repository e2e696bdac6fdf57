/** The worker's pure steps (src/worker/steps.ts): classify a batch, triage failed rows, what to ack, lag. */
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { encodeClaimEntry, encodeEventEntry } from '../../src/redis/stream-entry.js'
import type { StreamEntry } from '../../src/worker/entry.js'
import { classifyEntries, entriesToAck, maxDeliveriesOf, oldestEntryMs, triageFailures } from '../../src/worker/steps.js'

const row = (sequence: number) => ({ claimId: randomUUID(), campaignId: '42', userId: `u${sequence}`, sequence,
  claimedAt: 1_700_000_000_000 + sequence })
const entry = (id: string, raw: string[] | null, deliveries = 1): StreamEntry => ({ stream: 's', id, raw, deliveries })

t.test('classify: claims and events become rows, the rest dead letters', async (t) => {
  const claim = row(1)
  const cancelled = row(2)
  const batch = [
    entry('1-0', encodeClaimEntry(claim)),
    entry('2-0', encodeEventEntry('cancel', cancelled, 1_700_000_009_000, 'changed my mind')),
    entry('3-0', ['c', 'garbage']),
    entry('4-0', null),
    entry('5-0', encodeClaimEntry(row(5)), 6),
  ]
  const { items, dead } = classifyEntries(batch, 5)
  t.same(items.map((i) => i.entry.id), ['1-0', '2-0'])
  t.same(items[0]!.row, claim)
  t.notOk(items[0]!.event, 'a claim has no event')
  t.match(items[1], { row: { claimId: cancelled.claimId, sequence: 2 },
    event: { kind: 'cancel', at: 1_700_000_009_000, reason: 'changed my mind' } })
  t.same(dead.map((d) => d.entry.id), ['3-0', '4-0', '5-0'])
  t.match(dead[0]!.error, /^unparsable entry: bad claimId/)
  t.match(dead[1]!.error, /^unparsable entry: entry deleted while pending/)
  t.equal(dead[2]!.error, 'delivered 6 times, more than MAX_DELIVERIES (5)')
  t.same(classifyEntries([], 5), { items: [], dead: [] })
})

t.test('triage: refused rows and rows out of deliveries are dead letters, others are held', async (t) => {
  const [a, b, c] = [entry('1-0', encodeClaimEntry(row(1))), entry('2-0', encodeClaimEntry(row(2)), 5),
    entry('3-0', encodeClaimEntry(row(3)), 2)]
  const { items } = classifyEntries([a, b, c], 5)
  const earlier = { entry: entry('9-0', null), error: 'unparsable entry: entry deleted while pending' }
  const { letters, held } = triageFailures([
    { item: items[0]!, error: 'check constraint', refused: true },
    { item: items[1]!, error: 'deadlock', refused: false },
    { item: items[2]!, error: 'deadlock', refused: false },
  ], [earlier], 5)
  t.same(letters.map((l) => [l.entry.id, l.error]), [['9-0', earlier.error], ['1-0', 'check constraint'],
    ['2-0', 'deadlock']], 'dead letters of the batch first, then refusals and the last delivery')
  t.same([...held].map((e) => e.id), ['3-0'], 'a row that may still succeed waits for redelivery')
  t.same(entriesToAck([a, b, c], held).map((e) => e.id), ['1-0', '2-0'], 'everything but the held entry is acked')
  const all = [a, b]
  t.equal(entriesToAck(all, new Set()), all, 'nothing held: the batch itself')
})

t.test('lag and deliveries over a batch far larger than an argument list', async (t) => {
  const big: StreamEntry[] = []
  for (let i = 0; i < 300_000; i++) big.push(entry(`${1_700_000_000_000 + 300_000 - i}-0`, null, (i % 7) + 1))
  // Math.min(...big) would throw RangeError (too many arguments) at this size.
  t.equal(oldestEntryMs(big), 1_700_000_000_001)
  t.equal(maxDeliveriesOf(big), 7)
  t.equal(maxDeliveriesOf([]), 0)
})
