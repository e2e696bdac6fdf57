/**
 * A tiny run of `npm run bench` (its real entry point, every scenario, baselines included) so the bench
 * cannot rot: it completes, its correctness checks hold, its JSON has every field other tools read, and
 * it leaves no database or keys behind. Its timings are not asserted (they are only measured, in the bench).
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import postgres from 'postgres'
import { Redis } from 'ioredis'
import { ROOT } from './helper.js'
import { entryArgs } from './process.js'

const PG_BASE = process.env.TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432'
const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'

const FIELDS = [
  'ceiling.rps', 'issue.rps', 'issue.p99Ms', 'burst.seconds', 'burst.p99Ms', 'burst.issued', 'burst.correct', 'soldOut.rps',
  'baselines.dbLock.rps', 'baselines.redisLock.rps', 'baselines.twoStep.rps', 'baselines.twoStep.oversold',
  'persistence.drainMs', 'persistence.rowsPerSecOneWorker', 'ratios.issueToCeiling', 'ratios.soldOutToCeiling',
  'ratios.issueToDbLock', 'cluster.issue.rps', 'cluster.slot.single.claimsPerSec', 'cluster.slot.cluster.claimsPerSec',
  'clusterRatios.issueClusterToSingle', 'clusterRatios.slotClusterToSingle', 'cluster.issueReplica.rps',
  'clusterRatios.replicaToNone', 'clusterRatios.replicaP99DeltaMs', 'machine.cpus', 'machine.model', 'machine.node', 'machine.redis', 'machine.loadGenerator',
]
const get = (o: unknown, p: string) => p.split('.').reduce<any>((v, k) => (v == null ? undefined : v[k]), o)

t.test('a tiny bench run completes, checks hold, JSON complete, nothing left behind', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fcfs-bench-test-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const json = path.join(dir, 'bench.json')
  const users = 300
  const stock = 40
  const backlog = 1_000
  const child = spawn(process.execPath, [...entryArgs('bench/main'),
    '--users', String(users), '--stock', String(stock), '--connections', '10', '--duration', '1', '--warmup', '0',
    '--backlog', String(backlog), '--cluster', '--recovery-claims', '200', '--json', json], {
    cwd: ROOT,
    env: { ...process.env, DATABASE_URL: `${PG_BASE}/fcfs`, REDIS_URL, LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => { stdout += d })
  child.stderr.on('data', (d: Buffer) => { stderr += d })
  const [code] = await once(child, 'exit')
  t.equal(code, 0, 'bench exits 0', { stderr })
  t.match(stderr, /ceiling: .*req\/s/, 'progress is shown while it runs')
  t.match(stdout, /\| scenario +\| +rate/, 'prints the table')

  const r = JSON.parse(readFileSync(json, 'utf8'))
  for (const f of FIELDS) t.not(get(r, f), undefined, `JSON has ${f}`)
  for (const f of FIELDS.filter((f) => !f.startsWith('machine.') && f !== 'burst.correct')) t.type(get(r, f), 'number',
    `${f} is a number`)
  t.equal(r.burst.correct, true, 'burst correctness checks hold')
  t.ok(Object.keys(r.burst.checks).includes('dbRowsEqualIssued'), 'the burst check includes the database rows')
  t.equal(r.burst.issued, stock)
  t.same(Object.keys(r.cluster.issue.statusCodes), ['201'], 'on the cluster every issue-path request won')
  t.match(stdout, /issue path, cluster \(3\+3\)/, 'the table has the cluster rows')
  t.same(Object.keys(r.cluster.issueReplica.statusCodes), ['201'], 'CLAIM_DURABILITY=replica: every request won too')
  t.match(stdout, /issue path, cluster, CLAIM_DURABILITY=replica .* none; p50/, 'replica beside none in the table')
  const seeds = /cluster nodes (\S+)/.exec(stderr)?.[1]?.split(',') ?? []
  t.equal(seeds.length, 6, 'the run names its cluster nodes')
  for (const s of seeds) {
    const up = await new Promise<boolean>((resolve) => {
      const sock = net.connect(Number(s.split(':')[1]), '127.0.0.1')
      sock.once('connect', () => { sock.destroy(); resolve(true) })
      sock.once('error', () => resolve(false))
    })
    t.notOk(up, `cluster node ${s} stopped`)
  }
  t.same(r.burst.statusCodes, { 201: stock, 410: users - stock })
  t.equal(r.issue.statusCodes['201'], r.issue.requests, 'every issue-path request won')
  t.same(Object.keys(r.soldOut.statusCodes), ['410'], 'the sold-out campaign answers only 410')
  for (const b of [r.baselines.redisLock.burst, r.baselines.twoStep.burst]) {
    t.equal(b.issued, stock, 'a baseline burst issues the stock')
    t.equal(b.created201, b.issued, 'its 201s match what it recorded')
  }
  t.equal(r.baselines.twoStep.doubleClick.requests, users)
  // Open loop: 25/50/75 % of the same run's issue-path rate, every field there and consistent (no timings).
  t.same(r.openLoop.map((o: { loadPct: number }) => o.loadPct), [25, 50, 75], 'open loop at 25, 50 and 75 %')
  for (const o of r.openLoop) {
    for (const f of ['loadPct', 'rate', 'p50Ms', 'p99Ms', 'p999Ms', 'within50MsPct']) t.type(o[f], 'number', `openLoop ${o.loadPct}: ${f} is a number`)
    t.equal(o.rate, Math.max(1, Math.round((r.issue.rps * o.loadPct) / 100)), `openLoop ${o.loadPct}: rate is that share of issue.rps`)
    t.ok(o.p50Ms > 0 && o.p50Ms <= o.p99Ms && o.p99Ms <= o.p999Ms, `openLoop ${o.loadPct}: p50 <= p99 <= p99.9`)
    t.ok(o.within50MsPct >= 0 && o.within50MsPct <= 100, `openLoop ${o.loadPct}: within50MsPct is a share`)
    t.equal(o.sent, Math.max(1, Math.round(o.rate * 1)), `openLoop ${o.loadPct}: one second's requests sent`)
    t.same(o.statusCodes, { 201: o.sent }, `openLoop ${o.loadPct}: every request won`)
  }
  // The bare route at the same rates (the ceiling scenario ran): the machine's and the generator's own tail.
  t.same(r.openLoopCeiling.map((o: { loadPct: number; rate: number }) => [o.loadPct, o.rate]),
    r.openLoop.map((o: { loadPct: number; rate: number }) => [o.loadPct, o.rate]), 'the bare route at the same rates')
  for (const o of r.openLoopCeiling) {
    t.ok(o.p50Ms > 0 && o.p50Ms <= o.p99Ms && o.p99Ms <= o.p999Ms, `openLoopCeiling ${o.loadPct}: p50 <= p99 <= p99.9`)
    t.same(o.statusCodes, { 200: o.sent }, `openLoopCeiling ${o.loadPct}: every request answered 200`)
  }
  // Recovery (issue 19): a tiny seeded campaign fenced twice (deleted, then a stale run_id), repaired, issuing again.
  t.same(r.recovery.map((x: { claims: number; loss: string }) => `${x.claims} ${x.loss}`), ['200 empty', '200 stale'],
    'recovery measured per size and loss')
  for (const x of r.recovery) {
    for (const f of ['fencedMs', 'repairMs', 'recovering', 'resumedAt', 'seedMs']) t.type(x[f], 'number', `recovery ${x.loss}: ${f} is a number`)
    t.ok(x.recovering > 0, `recovery ${x.loss}: the campaign answered 503 RECOVERING first`)
    t.ok(x.fencedMs > 0 && x.repairMs >= 0, `recovery ${x.loss}: fenced for a while, a repair recorded`)
    t.ok(x.resumedAt > 200, `recovery ${x.loss}: issuing resumed past every persisted sequence`)
  }
  t.same(r.recovery.map((x: { reason: string }) => x.reason), ['rebuilt', 'checked'], 'rebuilt when deleted, checked when stale')
  t.match(stdout, /recovery: 200 claims, empty/, 'the table has the recovery rows')
  // wrk runs where it is installed (.ci/run installs it); its issue path wins every request too.
  if (r.wrk.version !== null) {
    t.ok(r.wrk.ceiling.rps > 0 && r.wrk.issue.rps > 0 && r.wrk.soldOut.rps > 0, 'wrk measured all three')
    t.equal(r.wrk.issue.non2xx, 0, 'wrk: every issue-path request won')
    t.equal(r.wrk.soldOut.non2xx, r.wrk.soldOut.requests, 'wrk: the sold-out campaign refuses every request')
    t.type(r.ratios.wrkIssueToCeiling, 'number')
  } else {
    t.comment('wrk not installed: its scenario was skipped')
  }

  const prefix = /key prefix (\S+)/.exec(stderr)?.[1]
  const db = /database (fcfs_bench_\w+)/.exec(stderr)?.[1]
  t.ok(prefix && db, 'the run names its database and key prefix')
  const redis = new Redis(REDIS_URL)
  const sql = postgres(`${PG_BASE}/postgres`, { max: 1, onnotice: () => {} })
  t.teardown(async () => { redis.disconnect(); await sql.end({ timeout: 5 }) })
  t.same((await redis.scan('0', 'MATCH', `${prefix}:*`, 'COUNT', 100_000))[1], [], 'no keys left behind')
  t.equal((await sql`SELECT 1 FROM pg_database WHERE datname = ${db!}`).length, 0, 'database dropped')
})
