/** Burst: distinct users against a small stock while workers persist; every answer and row checked. */
import { parseUserRecord } from '../../src/redis/users-record.js'
import { readIssued } from '../../src/redis/campaign-hash.js'
import type { LoadResult } from '../load-protocol.js'
import { entryExists, sleep, type Child } from '../processes.js'
import { fmtInt } from '../progress.js'
import { countRows, startWorkers, WORKER_ENTRY } from '../workers.js'
import { createCampaign, figures, fire, job, type Env, type HttpFigures } from '../env.js'

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
    const expected = Math.min(stock, users)
    // Rows are watched from the first request on: counted only after the burst's last answer, the time to
    // the last row included the seconds of 410s that follow the sell-out.
    const persisted = workersAvailable ? watchRows(env, id, expected) : null
    const r = await fire(env, 'burst', job(env, `${url}/v1/campaigns/${id}/claims`, 'burst'), users)

    let drainMs: number | null = null
    let rows: number | null = null
    if (persisted) {
      const done = await persisted
      rows = done.rows
      // The last 201 was stamped by the load generator, the last row by this process: one machine, one clock.
      if (rows === expected && r.last201At !== null) drainMs = Math.max(0, done.at - r.last201At)
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

/**
 * Counts the campaign's rows every 10 ms (one index-only count, well under a millisecond at this size)
 * until there are `expected` or two minutes have passed; `at` is when the count was first reached.
 */
async function watchRows(env: Env, id: string, expected: number): Promise<{ rows: number; at: number }> {
  const deadline = Date.now() + 120_000
  let rows: number
  while ((rows = await countRows(env.sql, id)) < expected && Date.now() < deadline) await sleep(10)
  return { rows, at: Date.now() }
}
