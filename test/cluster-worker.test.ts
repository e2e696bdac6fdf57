/**
 * The worker and reconcile on a real Redis Cluster (3 masters + 3 replicas): two workers draining every
 * partition with a kill -9 in the middle, then reconcile clean / LOST / restore after a master's data is lost.
 * Every role (API, workers, reconcile) runs as a Redis user with the cluster ACL rule of docs/security.md,
 * set on every node; at the end no node has denied anything (ACL LOG empty).
 */
import t from 'tap'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { loadConfig } from '../src/config.js'
import { aclRule } from '../src/redis/acl.js'
import { createKeys } from '../src/redis/keys.js'
import { ROOT, startApp, createCampaign, claim } from './helper.js'
import { clusterEnv, startCluster } from './cluster-helper.js'
import { stopProcess } from './process.js'
import { rowCount, startedWorker, streamState, waitUntil } from './worker-helper.js'
import { runReconcile } from './reconcile-helper.js'

const SLOW_START = 90_000 // a loaded CI machine can take long to start a tsx child
const cluster = await startCluster(t)
const base = await clusterEnv(t, cluster, {
  RATE_LIMIT_IP_MAX: '0', RATE_LIMIT_USER_MAX: '0', RECLAIM_IDLE_MS: '1500', RECLAIM_INTERVAL_MS: '300', WORKER_BLOCK_MS: '200',
})
const { redis, sql } = base
// The least-privilege user, on every node (ACLs are per node); REDIS_URL carries its name and password.
const ACL_PASSWORD = 'cluster-acl-password-0123'
for (const n of cluster.nodes) {
  await cluster.direct(n.port).call('ACL', 'SETUSER', 'fcfs', 'reset',
    ...aclRule(base.config.KEY_PREFIX, ACL_PASSWORD, { cluster: true }).split(' '))
}
const userUrl = new URL(base.config.REDIS_URL)
userUrl.username = 'fcfs'
userUrl.password = ACL_PASSWORD
const env = { ...base.env, REDIS_URL: userUrl.toString() }
const config = loadConfig(env)
const keys = createKeys(config.KEY_PREFIX, config.STREAM_PARTITIONS)
const { url } = await startApp(t, config)
const ids: string[] = []
for (let p = 0; p < keys.partitions; p++) ids.push(await createCampaign(url, { name: `w${p}`, stock: 1000 }))
const issued = new Map<string, string>() // claimId -> campaignId, every 201 of the file

async function burst(users: number, tag: string): Promise<void> {
  await Promise.all(ids.map(async (id) => {
    for (let i = 0; i < users; i += 25) {
      const rs = await Promise.all(Array.from({ length: Math.min(25, users - i) }, (_, k) => claim(url, id, `${tag}-${i + k}`)))
      for (const r of rs) {
        if (r.status !== 201) throw new Error(`claim answered ${r.status} ${JSON.stringify(r.body)}`)
        issued.set(r.body.claimId, id)
      }
    }
  }))
}

async function drained(): Promise<boolean> {
  const s = await streamState(redis, config)
  return s.length === 0 && s.pending === 0
}

async function assertPersistedOnce(t: Tap) {
  const rows = await sql`SELECT claim_id, campaign_id FROM claims`
  t.equal(rows.length, issued.size, `${issued.size} rows for ${issued.size} answers 201`)
  t.same(new Set(rows.map((r) => r.claim_id)), new Set(issued.keys()), 'every 201 persisted once, nothing else')
  const [row] = await sql`SELECT count(*)::int AS n FROM failed_claims`
  t.equal(row!.n, 0, 'nothing dead-lettered')
}
type Tap = Pick<typeof t, 'equal' | 'same'>

t.test('two workers drain every partition; one is killed -9 in the middle, every 201 is persisted once', async (t) => {
  const [alpha, beta] = await Promise.all([
    startedWorker(t, env, 'alpha', { WORKER_COUNT: '40' }, SLOW_START),
    startedWorker(t, env, 'beta', { WORKER_COUNT: '40' }, SLOW_START),
  ])
  const first = burst(60, 'a')
  await alpha.waitForLog((l) => l.msg === 'batch persisted', SLOW_START)
  // Killed in the middle of its work: frozen (SIGSTOP) at a moment it holds read, unacked entries, then -9.
  let held = 0
  for (let i = 0; i < 500 && held === 0; i++) {
    alpha.child.kill('SIGSTOP')
    held = (await streamState(redis, config)).byConsumer.alpha ?? 0
    if (held === 0) {
      alpha.child.kill('SIGCONT')
      await new Promise((r) => setTimeout(r, 10))
    }
  }
  t.ok(held > 0, `alpha is killed holding ${held} unacked entries`)
  alpha.child.kill('SIGKILL')
  t.same(await alpha.exited, { code: null, signal: 'SIGKILL' })
  await first
  await burst(20, 'b')
  await waitUntil('every stream drained and acked', drained, 90_000)
  await assertPersistedOnce(t)
  const byPartition = new Set((await sql`SELECT DISTINCT campaign_id FROM claims`).map((r) => keys.partitionOf(String(r.campaign_id))))
  t.equal(byPartition.size, keys.partitions, 'claims of every partition persisted')
  const reclaimed = beta.logs.filter((l) => l.msg === 'reclaimed idle entries')
    .reduce((n, l) => n + Number(l.entries), 0)
  t.ok(reclaimed >= held, `the survivor took over the dead worker's entries (${reclaimed} reclaimed)`)
  t.ok(beta.logs.some((l) => l.msg === 'batch persisted'), 'the survivor persisted batches')
  t.same(await stopProcess(beta), { code: 0, signal: null })
})

t.test('reconcile on the cluster: clean, LOST after a stream is lost, restore after a master loses its data', async (t) => {
  const clean = await runReconcile(env, ['--json'])
  t.equal(clean.code, 0, `clean: ${clean.stderr}`)
  t.equal(clean.json?.campaigns.length, keys.partitions)

  // LOST: claims issued while no worker runs, then the stream of one partition is gone.
  await burst(5, 'lost')
  const victim = ids[3]!
  await redis.del(keys.streamOf(victim))
  const lost = await runReconcile(env, ['--json'])
  t.equal(lost.code, 1)
  const report = lost.json!.campaigns.find((c) => c.campaignId === victim)!
  t.equal(report.classes.lost.count, 5, 'the 5 claims of the lost stream are LOST')
  t.equal(lost.json!.totals.lost, 5)
  t.equal(lost.json!.campaigns.reduce((n, c) => n + c.drift, 0), 5, 'and nothing else is drift')
  const fixed = await runReconcile(env, ['--fix', '--json'])
  t.equal(fixed.code, 0, `--fix: ${fixed.stderr}`)

  // A master loses its data (its replica follows): every campaign in its slots loses its live state.
  const master = (await cluster.topology()).find((n) => n.role === 'master')!
  const inSlots = (id: string) => {
    const slot = keys.slotOf(keys.partitionOf(id))
    return master.slots.some(([a, b]) => slot >= a && slot <= b)
  }
  const hit = ids.filter(inSlots)
  t.equal(hit.length, 4, '4 of the 12 campaigns live on that master')
  const w = await startedWorker(t, env, 'gamma', { WORKER_COUNT: '100' }, SLOW_START)
  await waitUntil('drained before the loss', drained, 90_000)
  await cluster.direct(master.port).flushall()
  const down = await claim(url, hit[0]!, 'after-loss')
  t.equal(down.status, 503)
  t.equal(down.body.code, 'CAMPAIGN_UNAVAILABLE')
  const seen = await runReconcile(env, ['--json'])
  t.equal(seen.code, 1)
  for (const id of hit) t.ok(seen.json!.campaigns.find((c) => c.campaignId === id)!.drift > 0, `campaign ${id}: drift reported`)
  const restored = await runReconcile(env, ['--fix', '--json'])
  t.equal(restored.code, 0, `restore: ${restored.stderr}`)
  for (const id of hit) {
    const [row] = await sql`SELECT max(sequence)::int AS max FROM claims WHERE campaign_id = ${id}`
    const max = row!.max as number
    const next = await claim(url, id, 'after-restore')
    t.equal(next.status, 201)
    t.equal(next.body.sequence, max + 1, `campaign ${id}: sequences continue after the restore`)
    issued.set(next.body.claimId, id)
  }
  await waitUntil('drained after the restore', async () => (await drained()) && (await rowCount(sql)) === issued.size, 90_000)
  await assertPersistedOnce(t)
  const after = await runReconcile(env, ['--json'])
  t.equal(after.code, 0, 'clean again')
  t.same(await stopProcess(w), { code: 0, signal: null })
})

t.test('every role ran as the cluster ACL user: no node denied it anything', async (t) => {
  for (const n of cluster.nodes) {
    const log = await cluster.direct(n.port).call('ACL', 'LOG') as unknown[]
    t.same(log, [], `node ${n.port}: ACL LOG is empty`)
  }
  const who = await cluster.direct(cluster.nodes[0]!.port).call('CLIENT', 'LIST') as string
  t.match(who, /user=fcfs/, 'the roles are connected as the ACL user')
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8')
  t.ok(readme.includes(`ACL SETUSER fcfs reset ${aclRule('fcfs', '<password>', { cluster: true })}\n`),
    'README shows this rule (for KEY_PREFIX=fcfs)')
})
