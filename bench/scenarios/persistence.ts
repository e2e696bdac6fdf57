/** Persistence: a backlog of stream entries drained by one, then by two workers (rows per second). */
import { randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'
import { runClaim } from '../../src/claims/claim-script.js'
import { defineScripts } from '../../src/redis/scripts.js'
import { entryExists, sleep } from '../processes.js'
import { fmtInt } from '../progress.js'
import { countRows, groups, startWorkers, WORKER_ENTRY } from '../workers.js'
import { createCampaign, type Env } from '../env.js'

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
