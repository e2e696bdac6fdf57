/** One drain measurement for npm run bench:drain (bench/worker-drain.ts). */
import { randomBytes, randomUUID } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { Session } from 'node:inspector/promises'
import { pino } from 'pino'
import postgres from 'postgres'
import { Redis } from 'ioredis'
import { loadConfig } from '../src/config.js'
import { dropDatabase, migrateDatabase } from '../src/db/migrate.js'
import { createKeys } from '../src/redis/keys.js'
import { encodeClaimEntry } from '../src/redis/stream-entry.js'
import { createWorker } from '../src/worker/worker.js'

export interface DrainResult {
  count: number
  entries: number
  ms: number
  rowsPerSec: number
  nodeCpuMs: number
  batches: number
  rows: number
  backlogAfter: number
}

/** Fills a private stream with `entries` claims of one campaign, then times one worker draining it. */
export async function drainOnce(opts: {
  entries: number; count: number; env?: Record<string, string | undefined>; cpuProfile?: string
}): Promise<DrainResult> {
  const id = randomBytes(4).toString('hex')
  const base = loadConfig(opts.env ?? process.env, 'script')
  const dbUrl = new URL(base.DATABASE_URL)
  dbUrl.pathname = `/fcfs_drain_${id}`
  const config = { ...base, DATABASE_URL: dbUrl.toString(), KEY_PREFIX: `drain${id}`, WORKER_COUNT: opts.count,
    WORKER_METRICS_PORT: -1, WORKER_NAME: `drain-${id}` }
  await migrateDatabase(config.DATABASE_URL)
  const sql = postgres(config.DATABASE_URL, { max: 1, onnotice: () => {} })
  const redis = new Redis(config.REDIS_URL)
  const keys = createKeys(config.KEY_PREFIX, config.STREAM_PARTITIONS)
  try {
    const [campaign] = await sql`INSERT INTO campaigns (name, stock, per_user_limit) VALUES ('drain', ${opts.entries}, 1) RETURNING id`
    const campaignId = String(campaign!.id)
    const stream = keys.streamOf(campaignId)
    const now = Date.now()
    for (let i = 0; i < opts.entries; i += 5000) {
      const pipe = redis.pipeline()
      for (let s = i + 1; s <= Math.min(opts.entries, i + 5000); s++) {
        pipe.xadd(stream, '*', ...encodeClaimEntry({ claimId: randomUUID(), campaignId, userId: `u${s}`, sequence: s, claimedAt: now }))
      }
      await pipe.exec()
    }
    // Logs go nowhere, but are still produced: their cost is part of the measurement.
    const log = pino({ level: 'info' }, pino.destination(process.env.DRAIN_LOG ?? '/dev/null'))
    let finished!: () => void
    const done = new Promise<void>((resolve) => { finished = resolve })
    let rows = 0
    const worker = createWorker(config, log,
      { onBatch: (b) => { rows += b.inserted; if (rows >= opts.entries) finished() } })
    const t0 = performance.now()
    const cpu0 = process.cpuUsage()
    const profiler = opts.cpuProfile ? await startProfiler() : undefined
    await worker.start()
    await done
    if (profiler) writeFileSync(opts.cpuProfile!, JSON.stringify(await profiler.stop()))
    const ms = performance.now() - t0
    const cpu = process.cpuUsage(cpu0)
    await worker.close()
    const [{ n }] = (await sql`SELECT count(*)::int AS n FROM claims`) as unknown as [{ n: number }]
    const backlogAfter = await redis.xlen(stream)
    return { count: opts.count, entries: opts.entries, ms: Math.round(ms),
      rowsPerSec: Math.round(opts.entries / (ms / 1000)), nodeCpuMs: Math.round((cpu.user + cpu.system) / 1000),
      batches: worker.stats.batches, rows: n, backlogAfter }
  } finally {
    await redis.del(...keys.streams())
    redis.disconnect()
    await sql.end({ timeout: 5 })
    await dropDatabase(config.DATABASE_URL)
  }
}

/** Profiles this process (the worker runs in it) for the drain only, not the stream filling around it. */
async function startProfiler() {
  const session = new Session()
  session.connect()
  await session.post('Profiler.enable')
  await session.post('Profiler.start')
  return {
    async stop() {
      const { profile } = await session.post('Profiler.stop')
      session.disconnect()
      return profile
    },
  }
}
