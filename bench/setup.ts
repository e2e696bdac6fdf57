/**
 * The bench's private environment: a database and key prefix of its own, the load generator process; and
 * their removal. bench/main.ts orchestrates the scenarios (bench/scenarios/) between the two.
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import postgres from 'postgres'
import { Redis } from 'ioredis'
import type { Config } from '../src/config.js'
import { dropDatabase, migrateDatabase } from '../src/db/migrate.js'
import { createKeys } from '../src/redis/keys.js'
import { LoadClient } from './load-client.js'
import { spawnNode, stopAll } from './processes.js'
import type { Progress } from './progress.js'
import { cpuSeconds } from './cpu-usage.js'
import type { BenchOptions } from './options.js'
import type { Env } from './env.js'

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
