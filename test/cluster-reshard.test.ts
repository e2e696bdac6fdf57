/**
 * Resharding under load (issue 19) on a real cluster (3 masters + 3 replicas): a live campaign's slot moves to
 * another master the way `redis-cli --cluster reshard` moves it (CLUSTER SETSLOT IMPORTING / MIGRATING,
 * MIGRATE key by key, SETSLOT NODE on both nodes) while concurrent HTTP claims flow on it, on a campaign whose
 * slot stays on the same (source) master and on one on the target master. What must hold:
 * - no 500 anywhere; the two campaigns whose slots do not move answer only 201 (never a 5xx);
 * - a claim on the moving slot is served once the move is done, or answers 503 BACKEND_UNAVAILABLE with
 *   Retry-After within its bound, and then holds nothing (never issued later);
 * - exact counts: the campaign's counter equals its 201s, sequences 1..issued once each;
 * - the worker persists every 201 once, the moved stream's included, with nothing dead-lettered.
 * The first move is quick (the slot is split ~0.5 s, under the bound): its claims wait and are served. The
 * second is slow (split longer than the bound): claims answer 503 meanwhile.
 */
import t, { type Test } from 'tap'
import { execFile } from 'node:child_process'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import { createKeys } from '../src/redis/keys.js'
import { spawnServer, freePort, createCampaign, claim, countBy } from './helper.js'
import { clusterEnv, startCluster } from './cluster-helper.js'
import { startedWorker, streamState, waitUntil } from './worker-helper.js'

const COMMAND_TIMEOUT_MS = 2000
const run = promisify(execFile)
const cluster = await startCluster(t)
const { config, env, redis, sql } = await clusterEnv(t, cluster, {
  RATE_LIMIT_IP_MAX: '0', RATE_LIMIT_USER_MAX: '0', WORKER_BLOCK_MS: '200',
  REDIS_COMMAND_TIMEOUT_MS: String(COMMAND_TIMEOUT_MS),
})
const keys = createKeys(config.KEY_PREFIX, config.STREAM_PARTITIONS)
const slotOf = (id: string) => keys.slotOf(keys.partitionOf(id))
// One API process (the load generator here must not slow it down, nor the moves) and one worker for the file.
const [{ url }, worker] = await Promise.all([
  spawnServer(t, env, await freePort(), 90_000),
  startedWorker(t, env, 'persister', { WORKER_COUNT: '200' }, 90_000),
])
const masterPorts = (await cluster.topology()).filter((n) => n.role === 'master').map((n) => n.port)

interface Answer {
  id: string; user: string; start: number; end: number; status: number; code?: string; retryAfter: string | null
  claimId?: string; sequence?: number
}

/**
 * Moves a slot as redis-cli does, one key per MIGRATE: pauseMs while the slot is MIGRATING with nothing moved,
 * and after each key; splitMs instead after the first key (the slot's keys split between the two nodes).
 */
async function moveSlot(slot: number, fromPort: number, toPort: number, pauseMs: number,
  splitMs = pauseMs): Promise<number> {
  const src = cluster.direct(fromPort)
  const dst = cluster.direct(toPort)
  const srcId = String(await src.call('CLUSTER', 'MYID'))
  const dstId = String(await dst.call('CLUSTER', 'MYID'))
  await dst.call('CLUSTER', 'SETSLOT', slot, 'IMPORTING', srcId)
  await src.call('CLUSTER', 'SETSLOT', slot, 'MIGRATING', dstId)
  await sleep(pauseMs)
  let moved = 0
  for (;;) {
    const batch = (await src.call('CLUSTER', 'GETKEYSINSLOT', slot, 1)) as string[]
    if (batch.length === 0) break
    await src.call('MIGRATE', '127.0.0.1', toPort, '', 0, 5000, 'KEYS', ...batch)
    moved += batch.length
    await sleep(moved === 1 ? splitMs : pauseMs)
  }
  await dst.call('CLUSTER', 'SETSLOT', slot, 'NODE', dstId)
  await src.call('CLUSTER', 'SETSLOT', slot, 'NODE', dstId)
  // The other masters learn it over the cluster bus; redis-cli tells them at once, so does this.
  for (const port of masterPorts.filter((p) => p !== fromPort && p !== toPort)) {
    await cluster.direct(port).call('CLUSTER', 'SETSLOT', slot, 'NODE', dstId)
  }
  return moved
}

/** After the streams drained: every 201 of these campaigns is a row once, no 503 left one, nothing dead-lettered. */
async function persistedOnce(t: Test, ids: string[], answers: Answer[], refused: Answer[]): Promise<Answer[]> {
  const won = answers.filter((a) => a.status === 201)
  const rows = await sql`SELECT claim_id, user_id FROM claims WHERE campaign_id IN ${sql(ids)}`
  t.equal(rows.length, won.length, `${won.length} rows for ${won.length} answers 201`)
  t.same(new Set(rows.map((r) => r.claim_id)), new Set(won.map((a) => a.claimId)), 'every 201 persisted once')
  const held = new Set(rows.map((r) => r.user_id))
  t.same(refused.filter((a) => held.has(a.user)).map((a) => a.user), [], 'no row for a user answered 503')
  const [dead] = await sql`SELECT count(*)::int AS n FROM failed_claims`
  t.equal(dead!.n, 0, 'nothing dead-lettered')
  return won
}

t.test('a live campaign\'s slot moves to another master during a burst of claims', async (t) => {
  const masters = (await cluster.topology()).filter((n) => n.role === 'master')
  const ownerPort = (slot: number) => masters.find((m) => m.slots.some(([a, b]) => slot >= a && slot <= b))!.port
  // Campaigns until two share a master (the moving one and one that stays) and one is on another master.
  const ids: string[] = []
  let moving: string | undefined, staying: string | undefined, elsewhere: string | undefined
  while (!moving || !staying || !elsewhere) {
    const id = await createCampaign(url, { name: `r${ids.length}`, stock: 1_000_000 })
    ids.push(id)
    const port = ownerPort(slotOf(id))
    if (!moving) moving = id
    else if (!staying && port === ownerPort(slotOf(moving)) && slotOf(id) !== slotOf(moving)) staying = id
    else if (!elsewhere && port !== ownerPort(slotOf(moving))) elsewhere = id
  }
  const slot = slotOf(moving)
  const source = ownerPort(slot)
  const target = ownerPort(slotOf(elsewhere))

  const answers: Answer[] = []
  let stop = false
  const clients = (id: string, n: number) => Array.from({ length: n }, async (_, k) => {
    for (let i = 0; !stop; i++) {
      const user = `${id}-${k}-${i}`
      const start = Date.now()
      const r = await claim(url, id, user)
      answers.push({ id, user, start, end: Date.now(), status: r.status, code: r.body?.code,
        retryAfter: r.headers.get('retry-after'), claimId: r.body?.claimId, sequence: r.body?.sequence })
    }
  })
  const load = Promise.all([...clients(moving, 16), ...clients(staying, 8), ...clients(elsewhere, 4)])

  const moves: { from: number; to: number; start: number; end: number; keys: number }[] = []
  const move = async (from: number, to: number, pauseMs: number, splitMs?: number) => {
    await sleep(500)
    const start = Date.now()
    const n = await moveSlot(slot, from, to, pauseMs, splitMs)
    moves.push({ from, to, start, end: Date.now(), keys: n })
  }
  try {
    await move(source, target, 100) // quick: the slot is split for well under the claims' bound
    await move(target, source, 100, COMMAND_TIMEOUT_MS + 1000) // slow: split for longer than the bound
    await sleep(500)
  } finally {
    stop = true
    await load
  }
  t.equal((await cluster.ownerOf(slot)).port, source, 'the slot is back on its first master')

  const by = (id: string) => answers.filter((a) => a.id === id)
  const statuses = (id: string) => countBy(by(id), (a) => a.code ? `${a.status} ${a.code}` : a.status)
  const [quick, slow] = moves as [typeof moves[0], typeof moves[0]]
  const arrived = (m: typeof quick) => by(moving).filter((a) => a.start >= m.start && a.start <= m.end)
  const slowest201 = (m: typeof quick) => Math.max(0, ...arrived(m).filter((a) => a.status === 201)
    .map((a) => a.end - a.start))
  t.comment(`moves: ${JSON.stringify(moves.map((m) => ({ ms: m.end - m.start, keys: m.keys,
    slowest201: slowest201(m) })))}`)
  t.comment(`answers: moving ${JSON.stringify(statuses(moving))} (during the quick move ` +
    `${JSON.stringify(countBy(arrived(quick), (a) => a.status))}, the slow one ` +
    `${JSON.stringify(countBy(arrived(slow), (a) => a.status))}), staying ${JSON.stringify(statuses(staying))}, ` +
    `elsewhere ${JSON.stringify(statuses(elsewhere))}`)
  t.equal(answers.filter((a) => a.status === 500).length, 0, 'no 500 anywhere')
  t.same(Object.keys(statuses(staying)), ['201'], 'the campaign on the same master, slot unmoved: only 201')
  t.same(Object.keys(statuses(elsewhere)), ['201'], 'the campaign on the other master: only 201')
  t.same(Object.keys(statuses(moving)).filter((s) => s !== '201' && s !== '503 BACKEND_UNAVAILABLE'), [],
    'the moving campaign: 201 or 503 BACKEND_UNAVAILABLE')

  // Claims that arrived while the slot was split waited for the move below the route and were served after it.
  for (const m of moves) {
    const waited = arrived(m).filter((a) => a.status === 201 && a.end > m.end)
    t.ok(waited.length > 0, `${waited.length} claims arriving during a move were served after it`)
  }
  // A 503 is the claim's bound running out while its slot was split, never a fast error: each waited its bound.
  const refused = by(moving).filter((a) => a.status === 503)
  t.ok(arrived(slow).filter((a) => a.status === 503).length > 0, 'the slow move outlasted some claims\' bound')
  t.same(countBy(refused, (a) => `retry-after ${a.retryAfter}`), refused.length ? { 'retry-after 1': refused.length }
    : {}, 'each 503 carries Retry-After')
  const times = refused.map((a) => a.end - a.start)
  t.comment(`503s answered after ${Math.min(...times)}-${Math.max(...times)} ms`)
  t.ok(times.every((ms) => ms >= COMMAND_TIMEOUT_MS - 300 && ms <= COMMAND_TIMEOUT_MS + 3000),
    `each 503 answered at its bound (${Math.min(...times)}-${Math.max(...times)} ms)`)
  t.same(refused.filter((a) => !moves.some((m) => a.start >= m.start - 500 && a.start <= m.end))
    .map((a) => a.start - slow.start), [], 'each 503 arrived while the slot was moving')

  // Exact counts, from Redis, for every campaign.
  for (const id of [moving, staying, elsewhere]) {
    const won = by(id).filter((a) => a.status === 201)
    t.equal(Number(await redis.hget(keys.campaign(id), 'issued')), won.length, `campaign ${id}: issued == 201s`)
    t.same(won.map((a) => a.sequence!).sort((x, y) => x - y), Array.from({ length: won.length }, (_, i) => i + 1),
      `campaign ${id}: sequences 1..${won.length}, each once`)
  }
  const users = await redis.hgetall(keys.users(moving))
  t.same(refused.filter((a) => users[a.user] !== undefined).map((a) => a.user), [], 'no user answered 503 holds a unit')

  // The worker persisted every 201 once, the moved stream included.
  await waitUntil('every stream drained and acked', async () => {
    const s = await streamState(redis, config)
    return s.length === 0 && s.pending === 0
  }, 60_000)
  const won = await persistedOnce(t, ids, answers, refused)
  const afterMoves = won.filter((a) => a.id === moving && a.start > slow.end)
  t.ok(afterMoves.length > 0, `${afterMoves.length} claims issued after both moves, persisted with the rest`)
  // A read blocked on the stream as it moves is ended by Redis (UNBLOCKED): read again at once, not a failure.
  const readFailures = worker.logs.filter((l) => l.msg === 'stream read failed, retrying')
  t.same(readFailures.map((l) => l.err), [], 'no failed stream read: reads follow the moved stream')
  t.notOk(worker.logs.some((l) => Number(l.level) >= 50), 'the worker logged no error')
})

t.test('add-node + reshard to the new master during a burst on a campaign in every partition', async (t) => {
  const ids: string[] = []
  for (let p = 0; p < keys.partitions; p++) ids.push(await createCampaign(url, { name: `g${p}`, stock: 1_000_000 }))
  const owners = async () => new Map(await Promise.all(ids.map(async (id) =>
    [id, (await cluster.ownerOf(slotOf(id))).port] as const)))
  const before = await owners()

  const answers: Answer[] = []
  let stop = false
  const load = Promise.all(ids.flatMap((id) => Array.from({ length: 2 }, async (_, k) => {
    for (let i = 0; !stop; i++) {
      const user = `${id}-g${k}-${i}`
      const start = Date.now()
      const r = await claim(url, id, user)
      answers.push({ id, user, start, end: Date.now(), status: r.status, code: r.body?.code,
        retryAfter: r.headers.get('retry-after'), claimId: r.body?.claimId, sequence: r.body?.sequence })
    }
  })))
  let added = 0, start = 0, end = 0, slots: number | undefined
  try {
    await sleep(500)
    added = await cluster.addMaster()
    // The slots up to the partition slot nearest the start of a master's range move to the new master, lowest
    // first, as rebalance moves them (the same redis-cli code, one slot at a time, 10 keys per MIGRATE).
    const topology = await cluster.topology()
    const newId = topology.find((n) => n.port === added)!.id
    const firsts = ids.map((id) => {
      const owner = topology.find((n) => n.port === before.get(id))!
      return { id: owner.id, count: slotOf(id) - owner.slots[0]![0] + 1 }
    }).sort((a, b) => a.count - b.count)
    start = Date.now()
    await run('redis-cli', ['--cluster', 'reshard', `127.0.0.1:${added}`, '--cluster-from', firsts[0]!.id,
      '--cluster-to', newId, '--cluster-slots', String(firsts[0]!.count), '--cluster-yes'], { timeout: 60_000 })
    end = Date.now()
    slots = firsts[0]!.count
    await sleep(500)
  } finally {
    stop = true
    await load
  }
  const after = await owners()
  const moved = ids.filter((id) => before.get(id) !== after.get(id))
  t.ok(moved.length > 0 && moved.every((id) => after.get(id) === added),
    `${moved.length} of ${ids.length} campaigns moved to the new master`)
  const inMoved = (a: Answer) => moved.includes(a.id)
  const during = answers.filter((a) => inMoved(a) && a.start >= start && a.start <= end)
  t.comment(`moved campaigns: ${during.length} claims arrived during the reshard, slowest answer ` +
    `${Math.max(0, ...during.map((a) => a.end - a.start))} ms`)
  t.comment(`reshard of ${slots} slots to the new master: ${end - start} ms; answers on moved campaigns ` +
    `${JSON.stringify(countBy(answers.filter(inMoved), (a) => a.code ? `${a.status} ${a.code}` : a.status))}, on ` +
    `the others ${JSON.stringify(countBy(answers.filter((a) => !inMoved(a)), (a) => a.code ? `${a.status} ${a.code}` : a.status))}`)
  t.equal(answers.filter((a) => a.status === 500).length, 0, 'no 500 anywhere')
  t.same(countBy(answers.filter((a) => !inMoved(a) && a.status !== 201), (a) => a.status), {},
    'campaigns whose slots did not move: only 201')
  const refused = answers.filter((a) => a.status !== 201)
  t.same(countBy(refused, (a) => `${a.status} ${a.code} retry-after ${a.retryAfter}`),
    refused.length ? { '503 BACKEND_UNAVAILABLE retry-after 1': refused.length } : {},
    'moved campaigns: 201, or 503 BACKEND_UNAVAILABLE with Retry-After')
  t.ok(refused.every((a) => a.end - a.start >= COMMAND_TIMEOUT_MS - 300), 'each 503 at its bound, none fast')
  for (const id of moved) {
    t.ok(answers.some((a) => a.id === id && a.status === 201 && a.start > end), `campaign ${id} served on the new master`)
  }

  for (const id of ids) {
    const won = answers.filter((a) => a.id === id && a.status === 201)
    t.equal(Number(await redis.hget(keys.campaign(id), 'issued')), won.length, `campaign ${id}: issued == 201s`)
    t.same(won.map((a) => a.sequence!).sort((x, y) => x - y), Array.from({ length: won.length }, (_, i) => i + 1),
      `campaign ${id}: sequences 1..${won.length}, each once`)
  }
  await waitUntil('every stream drained and acked', async () => {
    const s = await streamState(redis, config)
    return s.length === 0 && s.pending === 0
  }, 60_000)
  await persistedOnce(t, ids, answers, refused)
})
