import { createHash } from 'node:crypto'
import t from 'tap'
import { drawOrder } from '../../src/queue/draw.js'
import { percentile, spearman } from '../../src/queue/report.js'
import { publicState, parseLog, type QueueFigures } from '../../src/queue/store.js'

const sha = (s: string) => createHash('sha256').update(s).digest('hex')

t.test('drawOrder: ascending hex SHA-256 of "<seed>:<ticket>"', async (t) => {
  const seed = 'a'.repeat(64)
  const tickets = Array.from({ length: 200 }, (_, i) => ({ ticket: `t${i}` }))
  const order = drawOrder(seed, tickets).map((e) => sha(`${seed}:${e.ticket}`))
  t.same(order, [...order].sort(), 'sorted by the hash')
  t.equal(new Set(order).size, 200)
  t.not(drawOrder('b'.repeat(64), tickets)[0], drawOrder(seed, tickets)[0], 'another seed, another order')
})

t.test('percentile (nearest rank) and Spearman', async (t) => {
  t.equal(percentile([], 50), null)
  t.equal(percentile([1, 2, 3, 4], 50), 2)
  t.equal(percentile([1, 2, 3, 4], 99), 4)
  t.equal(spearman([1], [1]), null)
  t.equal(spearman([1, 2, 3, 4], [10, 20, 30, 40]), 1)
  t.equal(spearman([1, 2, 3, 4], [40, 30, 20, 10]), -1)
  t.ok(Math.abs(spearman([1, 2, 3, 4, 5], [2, 1, 3, 4, 5])! - 0.9) < 1e-9)
})

t.test('publicState and the admission log', async (t) => {
  const base = { stock: 2, issued: 0, returned: 0, opensAt: 1000, closesAt: null, endedAt: null, holdsOpen: 0,
    now: 500 } as QueueFigures
  t.equal(publicState(base), 'pre_queue')
  t.equal(publicState({ ...base, now: 1000 }), 'open')
  t.equal(publicState({ ...base, now: 1000, issued: 2 }), 'sold_out')
  t.equal(publicState({ ...base, now: 1000, issued: 2, holdsOpen: 1 }), 'open', 'a hold may come back: the line stays')
  t.equal(publicState({ ...base, now: 1000, issued: 3, returned: 1 }), 'sold_out')
  t.equal(publicState({ ...base, now: 1000, endedAt: 900 }), 'closed')
  t.equal(publicState({ ...base, now: 1000, closesAt: 1000 }), 'closed')
  t.same(parseLog(['a:1:200:100', 'x:1:300', 'a:2:300:']), [
    { kind: 'admitted', position: 1, at: 200, joinedAt: 100 }, { kind: 'expired', position: 1, at: 300 },
    { kind: 'admitted', position: 2, at: 300, joinedAt: null }])
})
