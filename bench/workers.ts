/** Worker processes for the burst and persistence scenarios, and what their consumer groups say. */
import path from 'node:path'
import type postgres from 'postgres'
import type { Redis } from 'ioredis'
import { flatRecord } from '../src/redis/codec.js'
import { sleep, spawnNode, type Child } from './processes.js'
import { serverEnv, type Env } from './env.js'

export const WORKER_ENTRY = 'src/worker/main'

/**
 * Starts `count` workers; with waitReady, resolves once each is reading (so none is still booting when the
 * burst starts). A backlog run does not wait: its clock starts at the first read, which it watches for.
 */
export async function startWorkers(env: Env, count: number, tag: string, waitReady: boolean): Promise<Child[]> {
  const names = Array.from({ length: count }, (_, i) => `worker-${tag}-${i + 1}`)
  const procs = names.map((name) => spawnNode(name, WORKER_ENTRY, {
    env: { ...serverEnv(env, 0), WORKER_NAME: `${env.runId}-${name}`, WORKER_METRICS_PORT: '0' },
    logFile: path.join(env.logDir, `${name}.log`),
  }))
  if (waitReady) await waitForWorkers(env, procs)
  return procs
}

interface GroupInfo { name: string; pending: number; lag: number | null; entriesRead: number | null }

export async function groups(redis: Redis, stream: string): Promise<GroupInfo[]> {
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

export const countRows = async (sql: postgres.Sql, campaignId: string) =>
  Number((await sql`SELECT count(*)::int AS n FROM claims WHERE campaign_id = ${campaignId}`)[0]!.n)
