/** The slot function and the partition layout, without Redis (the cluster tests check it against a live cluster). */
import t from 'tap'
import { keySlot, partitionTags, CLUSTER_SLOTS } from '../../src/redis/slots.js'
import { createKeys } from '../../src/redis/keys.js'

/** The ranges `redis-cli --cluster create` gives n masters (clusterManagerCommandCreate in redis-cli.c). */
function createRanges(masters: number): [number, number][] {
  const per = CLUSTER_SLOTS / masters
  const out: [number, number][] = []
  let first = 0
  let cursor = 0
  for (let i = 0; i < masters; i++) {
    let last = Math.round(cursor + per - 1)
    if (last > CLUSTER_SLOTS - 1 || i === masters - 1) last = CLUSTER_SLOTS - 1
    if (last < first) last = first
    out.push([first, last])
    first = last + 1
    cursor += per
  }
  return out
}

function spread(prefix: string, partitions: number, masters: number,
  campaigns = 1200): { partitions: number[]; campaigns: number[] } {
  const keys = createKeys(prefix, partitions)
  const ranges = createRanges(masters)
  const owner = (slot: number) => ranges.findIndex(([a, b]) => slot >= a && slot <= b)
  const byPartition = new Array<number>(masters).fill(0)
  for (let p = 0; p < partitions; p++) byPartition[owner(keys.slotOf(p))]!++
  const byCampaign = new Array<number>(masters).fill(0)
  for (let id = 1; id <= campaigns; id++) byCampaign[owner(keys.slotOf(keys.partitionOf(String(id))))]!++
  return { partitions: byPartition, campaigns: byCampaign }
}

t.test('CRC16 slots as Redis computes them, hash tags included', async (t) => {
  t.equal(keySlot('123456789'), 0x31c3 % CLUSTER_SLOTS, 'the CRC16/XMODEM check value')
  t.equal(keySlot('foo'), 12182)
  t.equal(keySlot('{user1000}.following'), keySlot('{user1000}.followers'))
  t.equal(keySlot('foo{}{bar}'), keySlot('foo{}{bar}'), 'an empty tag hashes the whole key')
  t.not(keySlot('foo{}{bar}'), keySlot('bar'))
  t.equal(keySlot('foo{{bar}}zap'), keySlot('{bar'))
})

t.test('every key of a campaign, its stream and its rate-limit counter share one slot; prefixes differ', async (t) => {
  const keys = createKeys('fcfs', 12)
  for (const id of ['1', '7', '12', '9007199254740993']) {
    const slot = keys.slotOf(keys.partitionOf(id))
    const rl = `fcfs:rl:x-u:${keys.tagOf(id)}:${id}:u`
    for (const k of [keys.campaign(id), keys.users(id), keys.streamOf(id), keys.idempotency(id, 'u{1}', 'k}'), rl]) {
      t.equal(keySlot(k), slot, k)
    }
  }
  const other = createKeys('shop-b', 12)
  t.not(other.slotOf(0), keys.slotOf(0), 'another deployment on the same cluster uses other slots')
  t.ok(keys.campaign('1').startsWith('fcfs:'), 'keys still start with the prefix (ACL key patterns, SCAN)')
  t.same(partitionTags('fcfs', 12), partitionTags('fcfs', 12), 'deterministic')
})

t.test('12 partitions spread evenly over the masters of a redis-cli-created cluster', async (t) => {
  for (const prefix of ['fcfs', 'shop-b', 't0a1b2c3d']) {
    t.same(spread(prefix, 12, 3), { partitions: [4, 4, 4], campaigns: [400, 400, 400] }, `${prefix}: 3 masters`)
    t.same(spread(prefix, 12, 6), { partitions: [2, 2, 2, 2, 2, 2], campaigns: [200, 200, 200, 200, 200, 200] },
      `${prefix}: 6 masters`)
    t.same(spread(prefix, 12, 4).partitions, [3, 3, 3, 3], `${prefix}: 4 masters`)
    t.same(spread(prefix, 12, 2).partitions, [6, 6], `${prefix}: 2 masters`)
    t.same(spread(prefix, 24, 3).partitions, [8, 8, 8])
    // 8 partitions cannot split 3 ways evenly; placed slots still give the best possible 3/3/2.
    t.same([...spread(prefix, 8, 3).partitions].sort(), [2, 3, 3])
  }
  const slots = createKeys('fcfs', 12)
  const placed = Array.from({ length: 12 }, (_, p) => slots.slotOf(p))
  const share = CLUSTER_SLOTS / 12
  const inMiddle = (s: number, p: number) => s >= (p + 0.25) * share && s <= (p + 0.75) * share
  t.ok(placed.every(inMiddle), 'each slot in the middle half of its share')
})
