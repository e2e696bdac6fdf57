/** Shared by the reconcile tests: run it (in-process or as the real script), seed states, snapshot Redis. */
import type { ChildProcess } from 'node:child_process'
import type postgres from 'postgres'
import { createDb } from '../src/db/client.js'
import { createRedis, type RedisClient } from '../src/redis/client.js'
import { createKeys, type Keys } from '../src/redis/keys.js'
import { rawClaim } from '../src/redis/stream-entry.js'
import { reconcile, type ReconcileOptions } from '../src/reconcile/reconcile.js'
import type { RunReport } from '../src/reconcile/report.js'
import type { TestEnv } from './helper.js'
import { entryArgs, runToEnd, startProcess } from './process.js'

export const keysOf = (env: Pick<TestEnv, 'config'>): Keys =>
  createKeys(env.config.KEY_PREFIX, env.config.STREAM_PARTITIONS)

/** reconcile() with its own clients, as the script builds them. */
export async function reconcileIn(env: Pick<TestEnv, 'config'>, opts: ReconcileOptions = {}) {
  const redis = createRedis(env.config, { autoPipelining: false, log: console, commandTimeoutMs: 10_000 })
  const db = createDb(env.config.DATABASE_URL, { max: 2 })
  try {
    return await reconcile(redis, db.db, keysOf(env), opts)
  } finally {
    await redis.quit()
    await db.close()
  }
}

export interface ProcessResult { code: number | null; stdout: string; stderr: string; json: RunReport | null }

/** The real entry point as a child process (from the build), for exit codes and output. */
export async function runReconcile(env: Record<string, string>, args: string[],
  nodeArgs: string[] = []): Promise<ProcessResult> {
  const r = await runToEnd(process.execPath, [...nodeArgs, ...entryArgs('scripts/reconcile'), ...args], env, 600_000)
  let json: RunReport | null = null
  if (args.includes('--json')) {
    try { json = JSON.parse(r.stdout) as RunReport } catch { /* left null: the test says so */ }
  }
  return { ...r, json }
}

export interface Entry {
  entryId: string
  claimId: string
  campaignId: string
  userId: string
  sequence: number
  claimedAt: number
}

export async function streamEntries(redis: RedisClient, keys: Keys, campaignId: string): Promise<Entry[]> {
  const out: Entry[] = []
  for (const [entryId, flat] of await redis.xrange(keys.streamOf(campaignId), '-', '+')) {
    // Compact entries and old five-field ones alike.
    const f = rawClaim(flat)
    if (f?.campaignId === campaignId) {
      out.push({ entryId, claimId: f.claimId!, campaignId, userId: f.userId!, sequence: Number(f.sequence),
        claimedAt: Number(f.claimedAt) })
    }
  }
  return out
}

/**
 * Hand-made state "persisted and acked": copies the campaign's stream entries into claims and deletes
 * them from the stream (what a drained worker leaves behind), for the tests that do not need a worker.
 */
export async function persistByHand(redis: RedisClient, sql: postgres.Sql, keys: Keys, campaignId: string,
  filter: (e: Entry) => boolean = () => true): Promise<Entry[]> {
  const entries = (await streamEntries(redis, keys, campaignId)).filter(filter)
  for (let i = 0; i < entries.length; i += 1000) {
    const chunk = entries.slice(i, i + 1000)
    await sql`INSERT INTO claims ${sql(chunk.map((e) => ({
      claim_id: e.claimId, campaign_id: e.campaignId, user_id: e.userId, sequence: e.sequence,
      claimed_at: new Date(e.claimedAt),
    })))} ON CONFLICT DO NOTHING`
    await redis.xdel(keys.streamOf(campaignId), ...chunk.map((e) => e.entryId))
  }
  return entries
}

/** Everything Redis holds for a campaign, to prove a second --fix changes nothing. */
export async function snapshot(redis: RedisClient, keys: Keys, campaignId: string) {
  return {
    campaign: await redis.hgetall(keys.campaign(campaignId)),
    users: await redis.hgetall(keys.users(campaignId)),
    stream: (await streamEntries(redis, keys, campaignId)).map((e) => `${e.entryId} ${e.claimId} ${e.sequence}`),
  }
}

export async function rowsOf(sql: postgres.Sql, campaignId: string) {
  return sql<{ claim_id: string; user_id: string; sequence: number }[]>`
    SELECT claim_id, user_id, sequence FROM claims WHERE campaign_id = ${campaignId} ORDER BY sequence`
}

/** The real worker (src/worker/main.ts) as a child process, killed at teardown if still running. */
export async function startWorker(t: { teardown(fn: () => unknown): void }, env: TestEnv,
  name: string): Promise<ChildProcess> {
  const { child, output } = startProcess(t, entryArgs('src/worker/main'), { ...env.env, WORKER_NAME: name,
    WORKER_BLOCK_MS: '100', WORKER_METRICS_PORT: '-1', LOG_LEVEL: 'warn' })
  child.once('exit', (code) => { if (code) console.error(`worker ${name} exited ${code}:\n${output()}`) })
  return child
}

/** Waits until the campaign's stream is empty and the table holds `rows` rows (bounded wait). */
export async function drained(env: TestEnv, id: string, rows: number): Promise<void> {
  const keys = keysOf(env)
  const until = Date.now() + 60_000
  for (;;) {
    const [left, counted] = await Promise.all([streamEntries(env.redis, keys, id),
      env.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM claims WHERE campaign_id = ${id}`])
    const n = counted[0]?.n
    if (left.length === 0 && n === rows) return
    if (Date.now() > until) throw new Error(`not drained: ${left.length} entries left, ${n}/${rows} rows`)
    await new Promise((r) => setTimeout(r, 100))
  }
}
