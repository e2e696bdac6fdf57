/**
 * The bench orchestrator: sets up a private database and key prefix, starts the processes each scenario
 * needs (server, workers, load generator) and collects the figures. It does no HTTP load itself.
 */
import { randomBytes, randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import postgres from 'postgres'
import { Redis } from 'ioredis'
import type { Config } from '../src/config.js'
import { dropDatabase, migrateDatabase } from '../src/db/migrate.js'
import { createKeys } from '../src/redis/keys.js'
import { runClaim } from '../src/claims/claim-script.js'
import { defineScripts } from '../src/redis/scripts.js'
import { flatRecord } from '../src/redis/codec.js'
import { parseUserRecord } from '../src/redis/users-record.js'
import { readIssued } from '../src/redis/campaign-hash.js'
import { LoadClient } from './load-client.js'
import type { LoadResult } from './load-protocol.js'
import { entryExists, sleep, spawnNode, stopAll, type Child } from './processes.js'
import { fmtInt, type Progress } from './progress.js'
import { cpuSeconds } from './cpu-usage.js'
import { runWrk, wrkLine, wrkVersion, type WrkFigures } from './wrk.js'
import type { BenchOptions } from './options.js'
import { createDbLockCampaign, createDbLockTables } from './baselines/db-lock.js'
import { checkRedisLock, createRedisLockCampaign } from './baselines/redis-lock.js'
import { checkTwoStep, createTwoStepCampaign } from './baselines/two-step.js'
import { idCounterKey } from './baselines/keys.js'
import type { BaselineCheck } from './baselines/outcome.js'
import type { ClusterFigures } from './cluster-run.js'
import { createCampaign, fire, figures, HUGE_STOCK, job, measure, serverEnv, startServer, statusLine, type Api,
  type Env, type HttpFigures } from './env.js'
import type { OpenLoopFigures } from './open-loop.js'
import type { QueueBenchFigures } from './queue-run.js'

const WORKER_ENTRY = 'src/worker/main'

export interface BurstFigures extends HttpFigures {
  users: number
  stock: number
  /** From the first request to the last answer. */
  seconds: number
  /** From the first request to the last 201. */
  sellOutSeconds: number | null
  issued: number
  correct: boolean
  checks: Record<string, boolean>
  /** Answers by status per bucketMs from the first request (the chart's timeline). */
  timeline: LoadResult['timeline']
}

interface BaselineBurst extends BaselineCheck {
  requests: number
  created201: number
  seconds: number
  statusCodes: Record<string, number>
}

/** What the API sent Redis for each claim, seen through MONITOR over a short run of fresh users. */
export interface RoundTrips {
  claims: number
  /** Commands the API's connections sent, by name, per claim (EVALSHA: 1 is one round trip). */
  perClaim: Record<string, number>
  roundTripsPerClaim: number
  /** Keyed commands claim.lua ran per claim (TIME, unkeyed, is not counted). */
  insideScriptPerClaim: number
}

export interface WrkResults {
  /** wrk's version, or null when it is not installed (then nothing else is measured). */
  version: string | null
  ceiling: WrkFigures | null
  issue: WrkFigures | null
  soldOut: WrkFigures | null
}

export interface BenchResults {
  ceiling: HttpFigures | null
  issue: (HttpFigures & { redis?: RoundTrips }) | null
  soldOut: HttpFigures | null
  burst: BurstFigures | null
  persistence: {
    workersAvailable: boolean
    burstWorkers: number
    drainMs: number | null
    backlog: number
    rowsPerSecOneWorker: number | null
    rowsPerSecTwoWorkers: number | null
    notes: string[]
  } | null
  wrk: WrkResults | null
  baselines: {
    dbLock: HttpFigures
    redisLock: HttpFigures & { burst: BaselineBurst }
    twoStep: HttpFigures & { oversold: number; doubleIssued: number; burst: BaselineBurst; doubleClick: BaselineBurst }
  } | null
  cluster?: ClusterFigures | null
  /** Constant arrival rate at 25/50/75 % of issue.rps (bench/open-loop.ts); null when not run. */
  openLoop: OpenLoopFigures[] | null
  queue?: QueueBenchFigures | null
}

// ---------------------------------------------------------------------------------------------------------

export async function runCeiling(env: Env): Promise<HttpFigures> {
  env.progress.step('ceiling: bare Fastify route, same server options and process layout')
  const { proc, url } = await startServer(env, 'ceiling', 'bench/ceiling-server', profileArgs(env, 'ceiling'))
  try {
    return await measure(env, 'ceiling', job(env, `${url}/v1/campaigns/1/claims`, 'ceiling'), proc)
  } finally {
    await proc.stop()
  }
}

/** --cpu-prof: each server process writes its profile into its own directory when it exits. */
export const profileDir = (env: Env, name: string) => path.resolve(env.opts.cpuProf!, name)
const profileArgs = (env: Env, name: string) =>
  (env.opts.cpuProf ? ['--cpu-prof', '--cpu-prof-dir', profileDir(env, name)] : [])

export async function startApi(env: Env): Promise<Api> {
  return startServer(env, 'api', 'src/server', profileArgs(env, 'api'))
}

export async function runIssue(env: Env, { url, proc }: Api): Promise<HttpFigures & { redis: RoundTrips }> {
  env.progress.step('issue path: stock larger than the requests, every request wins')
  const id = await createCampaign(env, url, 'bench issue path', HUGE_STOCK)
  const figures = await measure(env, 'issue', job(env, `${url}/v1/campaigns/${id}/claims`, 'issue'), proc)
  return { ...figures, redis: await countRoundTrips(env, `${url}/v1/campaigns/${id}/claims`) }
}

/**
 * Counts what reaches Redis per claim with MONITOR, briefly (it slows Redis down, so it runs after the
 * measured window): the API's connections are the ones that sent a command naming this run's keys;
 * everything they sent is counted, keyed or not. Commands run inside a script show as "lua".
 */
async function countRoundTrips(env: Env, url: string, claims = 500): Promise<RoundTrips> {
  const monitor = new Redis(env.config.REDIS_URL, { lazyConnect: true })
  const m = await monitor.monitor()
  const lines: { source: string; cmd: string; ours: boolean }[] = []
  const mine = `${env.prefix}:`
  m.on('monitor', (_time: string, args: string[], source: string) => {
    lines.push({ source, cmd: String(args[0]).toLowerCase(), ours: args.some((a) => String(a).startsWith(mine)) })
  })
  try {
    await sleep(100)
    const r = await env.load.run({ ...job(env, url, 'monitor'), amount: claims, connections: 10 })
    await sleep(200)
    const answered = r.statusCodes['201'] ?? 0
    const api = new Set(lines.filter((l) => l.ours && l.source !== 'lua').map((l) => l.source))
    const perClaim: Record<string, number> = {}
    for (const l of lines) if (api.has(l.source)) perClaim[l.cmd] = (perClaim[l.cmd] ?? 0) + 1
    for (const k of Object.keys(perClaim)) perClaim[k] = (perClaim[k] ?? 0) / Math.max(1, answered)
    const inside = lines.filter((l) => l.source === 'lua' && l.ours).length
    return {
      claims: answered, perClaim,
      roundTripsPerClaim: Object.values(perClaim).reduce((a, b) => a + b, 0),
      insideScriptPerClaim: inside / Math.max(1, answered),
    }
  } finally {
    m.disconnect()
    monitor.disconnect()
  }
}

export async function runSoldOut(env: Env, { url, proc }: Api): Promise<HttpFigures> {
  env.progress.step('sold out: every request arrives after the last unit went')
  const id = await createCampaign(env, url, 'bench sold out', 1)
  const first = await env.load.run({ ...job(env, `${url}/v1/campaigns/${id}/claims`, 'soldout-first'), amount: 1,
    connections: 1 })
  if (first.statusCodes['201'] !== 1) throw new Error(`sold-out set-up: expected one 201, got ${statusLine(first.statusCodes)}`)
  return measure(env, 'sold out', job(env, `${url}/v1/campaigns/${id}/claims`, 'soldout'), proc)
}

/** Ceiling, issue path and sold out through wrk (bench/wrk.ts), both servers in the trusted-header mode. */
export async function runWrkScenarios(env: Env): Promise<WrkResults> {
  const version = wrkVersion()
  if (!version) {
    env.progress.step('wrk: not installed, skipped (Debian: apt-get install wrk)')
    return { version: null, ceiling: null, issue: null, soldOut: null }
  }
  env.progress.step(`wrk (${version}, 1 thread): ceiling, issue path and sold out, x-user-id header per request`)
  const headerMode = { TRUSTED_USER_HEADER: env.userHeader, JWT_SECRET: '' }
  const { connections, warmup, duration } = env.opts
  const wrk = async (label: string, url: string, users: string) => {
    const base = { connections, header: env.userHeader, userPrefix: `${env.runId}-wrk-${users}-` }
    if (warmup > 0) await runWrk(url, { ...base, seconds: warmup, userPrefix: `${base.userPrefix}w` })
    env.progress.step(`  wrk ${label}: measuring ${duration} s at ${connections} connections`)
    const f = await runWrk(url, { ...base, seconds: duration })
    env.progress.step(`  wrk ${label}: ${wrkLine(f)}`)
    return f
  }
  const ceilingServer = await startServer(env, 'wrk-ceiling', 'bench/ceiling-server', [], headerMode)
  let ceiling: WrkFigures
  try {
    ceiling = await wrk('ceiling', `${ceilingServer.url}/v1/campaigns/1/claims`, 'ceiling')
  } finally {
    await ceilingServer.proc.stop()
  }
  const api = await startServer(env, 'wrk-api', 'src/server', [], headerMode)
  try {
    const issueId = await createCampaign(env, api.url, 'bench wrk issue path', HUGE_STOCK)
    const issue = await wrk('issue', `${api.url}/v1/campaigns/${issueId}/claims`, 'issue')
    const soldOutId = await createCampaign(env, api.url, 'bench wrk sold out', 1)
    const first = await fetch(`${api.url}/v1/campaigns/${soldOutId}/claims`,
      { method: 'POST', headers: { [env.userHeader]: `${env.runId}-wrk-first` } })
    if (first.status !== 201) throw new Error(`wrk sold-out set-up: expected 201, got ${first.status}`)
    const soldOut = await wrk('sold out', `${api.url}/v1/campaigns/${soldOutId}/claims`, 'soldout')
    return { version, ceiling, issue, soldOut }
  } finally {
    await api.proc.stop()
  }
}

// ---------------------------------------------------------------------------------------------------------

/**
 * Starts `count` workers; with waitReady, resolves once each is reading (so none is still booting when the
 * burst starts). A backlog run does not wait: its clock starts at the first read, which it watches for.
 */
async function startWorkers(env: Env, count: number, tag: string, waitReady: boolean): Promise<Child[]> {
  const names = Array.from({ length: count }, (_, i) => `worker-${tag}-${i + 1}`)
  const procs = names.map((name) => spawnNode(name, WORKER_ENTRY, {
    env: { ...serverEnv(env, 0), WORKER_NAME: `${env.runId}-${name}`, WORKER_METRICS_PORT: '0' },
    logFile: path.join(env.logDir, `${name}.log`),
  }))
  if (waitReady) await waitForWorkers(env, procs)
  return procs
}

interface GroupInfo { name: string; pending: number; lag: number | null; entriesRead: number | null }

async function groups(redis: Redis, stream: string): Promise<GroupInfo[]> {
  try {
    const raw = (await redis.xinfo('GROUPS', stream)) as unknown[][]
    return raw.map((g) => {
      const m = flatRecord(g)
      const num = (v: unknown) => (v === null || v === undefined ? null : Number(v))
      return { name: String(m.name), pending: Number(m.pending), lag: num(m.lag), entriesRead: num(m['entries-read']) }
    })
  } catch {
    return [] // no such stream yet
  }
}

/**
 * Workers create the consumer group on every stream at start-up, right before their first XREADGROUP
 * (Redis 7.0 lists a consumer only once a read delivered something, so that cannot be waited for).
 */
async function waitForWorkers(env: Env, procs: Child[], timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    for (const p of procs) if (p.child.exitCode !== null) throw new Error(`${p.name} exited (${p.child.exitCode}); see ${env.logDir}`)
    const all = await Promise.all(env.keys.streams().map((s) => groups(env.redis, s)))
    if (all.every((g) => g.length > 0)) return sleep(200)
    if (Date.now() > deadline) throw new Error(`workers did not create their consumer groups within ${timeoutMs} ms; see ${env.logDir}`)
    await sleep(20)
  }
}

const countRows = async (sql: postgres.Sql, campaignId: string) =>
  Number((await sql`SELECT count(*)::int AS n FROM claims WHERE campaign_id = ${campaignId}`)[0]!.n)

export async function runBurst(env: Env, url: string):
  Promise<{ burst: BurstFigures; drainMs: number | null; workersAvailable: boolean }> {
  const { users, stock, burstWorkers } = env.opts
  env.progress.step(`burst: stock ${fmtInt(stock)}, ${fmtInt(users)} distinct users, ${burstWorkers} worker(s) persisting`)
  const workersAvailable = entryExists(WORKER_ENTRY)
  // Earlier scenarios' entries would stand between the workers and the burst's: drop them.
  await env.redis.del(...env.keys.streams())
  let workers: Child[] = []
  if (workersAvailable) {
    workers = await startWorkers(env, burstWorkers, 'burst', true)
  } else {
    env.progress.step(`  no worker entry point (${WORKER_ENTRY}): DB rows are not checked`)
  }
  try {
    const id = await createCampaign(env, url, 'bench burst', stock)
    const r = await fire(env, 'burst', job(env, `${url}/v1/campaigns/${id}/claims`, 'burst'), users)
    const expected = Math.min(stock, users)

    let drainMs: number | null = null
    let rows: number | null = null
    if (workersAvailable) {
      const deadline = Date.now() + 120_000
      while ((rows = await countRows(env.sql, id)) < expected && Date.now() < deadline) await sleep(5)
      // The last 201 was stamped by the load generator, the last row by this process: one machine, one clock.
      if (rows === expected && r.last201At !== null) drainMs = Math.max(0, Date.now() - r.last201At)
      const last = drainMs !== null ? `, last row ${fmtInt(drainMs)} ms after the last 201` : ''
      env.progress.step(`  persisted: ${fmtInt(rows)} rows${last}`)
    }

    const checks = await checkBurst(env, id, r, expected, rows)
    const correct = Object.values(checks).every(Boolean)
    const failed = Object.entries(checks).filter(([, v]) => !v).map(([k]) => k).join(', ')
    env.progress.step(`  correctness: ${correct ? 'all checks hold' : `FAILED: ${failed}`}`)
    return {
      burst: {
        ...figures(r), users, stock, seconds: r.seconds,
        sellOutSeconds: r.last201At !== null ? (r.last201At - r.startedAt) / 1000 : null,
        issued: (await readIssued(env.redis, env.keys, id)) ?? 0, correct, checks, timeline: r.timeline,
      },
      drainMs,
      workersAvailable,
    }
  } finally {
    await Promise.all(workers.map((w) => w.stop()))
  }
}

async function checkBurst(env: Env, id: string, r: LoadResult, expected: number,
  rows: number | null): Promise<Record<string, boolean>> {
  const issued = (await readIssued(env.redis, env.keys, id)) ?? 0
  const records = await env.redis.hgetall(env.keys.users(id))
  const claims = Object.values(records).map((r) => parseUserRecord(r).claims)
  const seqs = claims.flat().map((c) => c.sequence).sort((a, b) => a - b)
  const checks: Record<string, boolean> = {
    everyRequestAnswered: r.requests === env.opts.users && r.errors + r.timeouts === 0,
    onlyCreatedOrSoldOut: Object.keys(r.statusCodes).every((c) => c === '201' || c === '410'),
    created201EqualsMinStockUsers: (r.statusCodes['201'] ?? 0) === expected,
    redisIssuedEqualsMinStockUsers: issued === expected,
    everySequenceOnce: seqs.length === expected && seqs.every((s, i) => s === i + 1),
    noUserOverLimit: claims.every((c) => c.length <= 1),
  }
  if (rows === null) {
    checks.dbRowsEqualIssued = false
    return checks
  }
  const [db] = await env.sql`SELECT count(*)::int AS n, count(DISTINCT sequence)::int AS seqs, coalesce(min(sequence), 0)::int AS lo,
    coalesce(max(sequence), 0)::int AS hi FROM claims WHERE campaign_id = ${id}`
  const [perUser] = await env.sql`SELECT coalesce(max(n), 0)::int AS most FROM (SELECT count(*) AS n FROM claims WHERE campaign_id = ${id} GROUP BY user_id) u`
  checks.dbRowsEqualIssued = db!.n === expected
  checks.dbEverySequenceOnce = db!.seqs === expected && (expected === 0 || (db!.lo === 1 && db!.hi === expected))
  checks.dbNoUserOverLimit = perUser!.most <= 1
  return checks
}

// ---------------------------------------------------------------------------------------------------------

/** Issues `count` claims straight through the claim script (what the API does per request), no HTTP. */
async function fillBacklog(env: Env, url: string, count: number, tag: string): Promise<string> {
  const id = await createCampaign(env, url, `bench backlog ${tag}`, count)
  const redis = new Redis(env.config.REDIS_URL, { enableAutoPipelining: true })
  try {
    defineScripts(redis)
    const chunk = 2_000
    for (let i = 0; i < count; i += chunk) {
      await Promise.all(Array.from({ length: Math.min(chunk, count - i) }, (_, j) => runClaim(redis, env.keys, {
        campaignId: id, userId: `${env.runId}-backlog-${tag}-${i + j}`, claimId: randomUUID(), idempotencyTtlS: 60,
      })))
    }
  } finally {
    redis.disconnect()
  }
  const len = await env.redis.xlen(env.keys.streamOf(id))
  if (len !== count) throw new Error(`backlog ${tag}: stream holds ${len} entries, expected ${count}`)
  return id
}

/** Rows per second from the first read of the backlog until every entry is acked (acks follow commits). */
async function drainBacklog(env: Env, id: string, count: number, workerCount: number, tag: string): Promise<number> {
  const stream = env.keys.streamOf(id)
  const workers = await startWorkers(env, workerCount, tag.replace(/\W+/g, '-'), false)
  try {
    const deadline = Date.now() + 300_000
    let startedAt: number | null = null
    let doneAt: number | null = null
    let lastReport = Date.now()
    while (doneAt === null) {
      if (Date.now() > deadline) throw new Error(`backlog ${tag} not drained in time; see ${env.logDir}`)
      for (const w of workers) if (w.child.exitCode !== null) throw new Error(`${w.name} exited (${w.child.exitCode}); see ${env.logDir}`)
      const [len, gs] = await Promise.all([env.redis.xlen(stream), groups(env.redis, stream)])
      const now = Date.now()
      const pending = gs.reduce((a, g) => a + g.pending, 0)
      const read = gs.some((g) => (g.entriesRead ?? 0) > 0) || pending > 0 || len < count
      if (startedAt === null && read) startedAt = now
      const caughtUp = gs.length > 0 && pending === 0 && (len === 0 || gs.every((g) => g.lag === 0))
      if (startedAt !== null && caughtUp) doneAt = now
      if (now - lastReport >= 1_000) {
        env.progress.step(`    ${tag}: ${fmtInt(len)} entries left, ${fmtInt(pending)} pending`)
        lastReport = now
      }
      await sleep(2)
    }
    const rows = await countRows(env.sql, id)
    if (rows !== count) throw new Error(`backlog ${tag}: ${rows} rows in PostgreSQL, expected ${count}`)
    const rate = count / Math.max(0.001, (doneAt - startedAt!) / 1000)
    env.progress.step(`  ${tag}: ${fmtInt(count)} rows in ${fmtInt(doneAt - startedAt!)} ms = ${fmtInt(rate)} rows/s`)
    return rate
  } finally {
    await Promise.all(workers.map((w) => w.stop()))
  }
}

export async function runBacklogs(env: Env, url: string): Promise<{ one: number | null; two: number | null }> {
  const n = env.opts.backlog
  env.progress.step(`persistence: a backlog of ${fmtInt(n)} stream entries drained by one, then by two workers`)
  if (!entryExists(WORKER_ENTRY)) {
    env.progress.step(`  skipped: no worker entry point (${WORKER_ENTRY})`)
    return { one: null, two: null }
  }
  env.progress.step('  filling backlog 1 through the claim script')
  const a = await fillBacklog(env, url, n, 'one')
  const one = await drainBacklog(env, a, n, 1, 'one worker')
  env.progress.step('  filling backlog 2 through the claim script')
  const b = await fillBacklog(env, url, n, 'two')
  const two = await drainBacklog(env, b, n, 2, 'two workers')
  return { one, two }
}

// ---------------------------------------------------------------------------------------------------------

async function baselineBurst(env: Env, url: string, label: string, id: string, perUser: number,
  check: () => Promise<BaselineCheck>): Promise<BaselineBurst> {
  const r = await fire(env, label, job(env, `${url}`.replace(':id', id), `${label.replace(/\W+/g, '-')}`, { perUser }),
    env.opts.users)
  const c = await check()
  env.progress.step(`  ${label}: issued ${fmtInt(c.issued)} of stock ${fmtInt(env.opts.stock)}, oversold ${c.oversold}, double-issued ${c.doubleIssued}, duplicate sequences ${c.duplicateSequences}`)
  return { ...c, requests: r.requests, created201: r.statusCodes['201'] ?? 0, seconds: r.seconds,
    statusCodes: r.statusCodes }
}

export async function runBaselines(env: Env): Promise<NonNullable<BenchResults['baselines']>> {
  env.progress.step('baselines: the same client against (a) SELECT ... FOR UPDATE, (b) a Redis lock, (c) INCR + a set check')
  await createDbLockTables(env.sql)
  const { proc, url } = await startServer(env, 'baselines', 'bench/baselines/server')
  const nextId = async () => String(await env.redis.incr(idCounterKey(env.prefix)))
  const { stock } = env.opts
  try {
    const a = await createDbLockCampaign(env.sql, HUGE_STOCK)
    const dbLock = await measure(env, '(a) db lock', job(env, `${url}/baselines/db-lock/${a}/claims`, 'dblock'), proc)

    const b = await nextId()
    await createRedisLockCampaign(env.redis, env.prefix, b, HUGE_STOCK)
    const redisLock = await measure(env, '(b) redis lock',
      job(env, `${url}/baselines/redis-lock/${b}/claims`, 'redislock'), proc)
    const bBurst = await nextId()
    await createRedisLockCampaign(env.redis, env.prefix, bBurst, stock)
    const redisLockBurst = await baselineBurst(env, `${url}/baselines/redis-lock/:id/claims`, '(b) burst', bBurst, 1,
      () => checkRedisLock(env.redis, env.prefix, bBurst))

    const c = await nextId()
    await createTwoStepCampaign(env.redis, env.prefix, c, HUGE_STOCK)
    const twoStep = await measure(env, '(c) two-step', job(env, `${url}/baselines/two-step/${c}/claims`, 'twostep'),
      proc)
    const cBurst = await nextId()
    await createTwoStepCampaign(env.redis, env.prefix, cBurst, stock)
    const twoStepBurst = await baselineBurst(env, `${url}/baselines/two-step/:id/claims`, '(c) burst', cBurst, 1,
      () => checkTwoStep(env.redis, env.prefix, cBurst))
    // The same burst where every user clicks twice: the race a per-user check in a separate round trip invites.
    const cDouble = await nextId()
    await createTwoStepCampaign(env.redis, env.prefix, cDouble, stock)
    const twoStepDouble = await baselineBurst(env, `${url}/baselines/two-step/:id/claims`, '(c) double-click burst',
      cDouble, 2,
      () => checkTwoStep(env.redis, env.prefix, cDouble))

    return {
      dbLock,
      redisLock: { ...redisLock, burst: redisLockBurst },
      twoStep: {
        ...twoStep,
        oversold: Math.max(twoStepBurst.oversold, twoStepDouble.oversold),
        doubleIssued: Math.max(twoStepBurst.doubleIssued, twoStepDouble.doubleIssued),
        burst: twoStepBurst, doubleClick: twoStepDouble,
      },
    }
  } finally {
    await proc.stop()
  }
}

// ---------------------------------------------------------------------------------------------------------

export async function createEnv(opts: BenchOptions, progress: Progress, config: Config): Promise<Env> {
  const runId = randomBytes(4).toString('hex')
  const dbUrl = new URL(config.DATABASE_URL)
  dbUrl.pathname = `/fcfs_bench_${runId}`
  const logDir = mkdtempSync(path.join(os.tmpdir(), 'fcfs-bench-'))
  const prefix = `bench${runId}`
  progress.step(`set-up: database ${dbUrl.pathname.slice(1)}, key prefix ${prefix}, logs in ${logDir}`)
  await migrateDatabase(dbUrl.toString())
  const loadProc = spawnNode('load-generator', 'bench/load-generator',
    { env: {}, logFile: path.join(logDir, 'load-generator.log'), ipc: true })
  const load = new LoadClient(loadProc)
  await load.ready
  const redis = new Redis(config.REDIS_URL)
  const redisPid = Number(/process_id:(\d+)/.exec(await redis.info('server'))?.[1]) || null
  return {
    opts, progress, config, runId, prefix, logDir, load,
    dbUrl: dbUrl.toString(),
    keys: createKeys(prefix, config.STREAM_PARTITIONS),
    redis,
    redisPid: redisPid && cpuSeconds(redisPid) !== null ? redisPid : null,
    sql: postgres(dbUrl.toString(), { max: 2, onnotice: () => {} }),
    adminToken: randomBytes(24).toString('hex'),
    jwtSecret: randomBytes(32).toString('hex'),
    userHeader: 'x-user-id',
    stopCluster: null,
  }
}

/** Stops every process, drops the private database and keys; keeps the logs only when asked to. */
export async function destroyEnv(env: Env, keepLogs: boolean): Promise<void> {
  await env.load.close().catch(() => {})
  await stopAll()
  await env.stopCluster?.()
  let cursor = '0'
  do {
    const [next, keys] = await env.redis.scan(cursor, 'MATCH', `${env.prefix}:*`, 'COUNT', 1000)
    cursor = next
    if (keys.length) await env.redis.unlink(...keys)
  } while (cursor !== '0')
  env.redis.disconnect()
  await env.sql.end({ timeout: 5 })
  await dropDatabase(env.dbUrl)
  if (!keepLogs) rmSync(env.logDir, { recursive: true, force: true })
}
