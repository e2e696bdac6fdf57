/**
 * Time and peak memory of reconcile on a seeded campaign (default 1,000,000 claims, 10 LOST and 10
 * "Redis lost data" among them), beside what merely loading both sides into memory takes.
 *
 *   npm run build && node dist/bench/reconcile-memory.js [--claims 1000000]
 *
 * Uses a private database and key prefix on the configured PostgreSQL/Redis and removes them after.
 * Each measured run is the real script under /usr/bin/time -v (peak RSS = "Maximum resident set size").
 */
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import postgres from 'postgres'
import { Redis } from 'ioredis'
import { loadConfig } from '../src/config.js'
import { dropDatabase, migrateDatabase } from '../src/db/migrate.js'
import { createKeys } from '../src/redis/keys.js'
import { seedCampaign } from './reconcile-seed.js'

const { values } = parseArgs({ options: { claims: { type: 'string', default: '1000000' },
  'naive-load': { type: 'string' } } })
const here = path.dirname(fileURLToPath(import.meta.url))
const config = loadConfig(process.env, 'script')

if (values['naive-load']) {
  // The comparison: everything of one campaign held at once, as a non-streaming check would.
  const id = values['naive-load']
  const keys = createKeys(config.KEY_PREFIX, config.STREAM_PARTITIONS)
  const redis = new Redis(config.REDIS_URL)
  const sql = postgres(config.DATABASE_URL, { max: 1 })
  const users = await redis.hgetall(keys.users(id))
  const rows = await sql`SELECT claim_id, user_id, sequence, claimed_at FROM claims WHERE campaign_id = ${id}`
  const byClaim = new Map<string, number>()
  for (const [, record] of Object.entries(users)) for (const part of record.split(',')) byClaim.set(part.split(':')[1]!, Number(part.split(':')[0]))
  console.log(JSON.stringify({ users: Object.keys(users).length, rows: rows.length, indexed: byClaim.size }))
  redis.disconnect()
  await sql.end()
  process.exit(0)
}

const n = Number(values.claims)
const tag = randomBytes(4).toString('hex')
const base = new URL(config.DATABASE_URL)
base.pathname = `/fcfs_bench_reconcile_${tag}`
const env = { ...process.env, DATABASE_URL: base.toString(), KEY_PREFIX: `bench${tag}`, LOG_LEVEL: 'silent' }
await migrateDatabase(env.DATABASE_URL)
const redis = new Redis(config.REDIS_URL)
const sql = postgres(env.DATABASE_URL, { max: 2, onnotice: () => {} })
const keys = createKeys(env.KEY_PREFIX, config.STREAM_PARTITIONS)

function timed(args: string[]) {
  const r = spawnSync('/usr/bin/time', ['-v', process.execPath, ...args],
    { env, encoding: 'utf8', maxBuffer: 64 << 20 })
  const rss = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr)?.[1] ?? NaN) / 1024
  const wall = /Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)/.exec(r.stderr)?.[1] ?? '?'
  return { code: r.status, rssMb: Math.round(rss), wall, stdout: r.stdout }
}

try {
  const t0 = Date.now()
  const spread = (k: number) => Array.from({ length: 10 }, (_, i) => Math.floor(((i + k / 10) * n) / 10) + 1)
  const id = await seedCampaign(redis, sql, keys, { claims: n, notPersisted: spread(3), notInRedis: spread(7) })
  console.log(`seeded ${n} claims in ${((Date.now() - t0) / 1000).toFixed(1)} s (campaign ${id}, prefix ${env.KEY_PREFIX})`)
  const script = path.join(here, '../scripts/reconcile.js')
  for (const [label, args] of [['check', []], ['fix', ['--fix']], ['check again', []]] as const) {
    const r = timed([script, '--campaign', id, '--json', ...args])
    const doc = JSON.parse(r.stdout) as { exitCode: number; campaigns: { classes: Record<string,
      { count: number }> }[] }
    const found = Object.entries(doc.campaigns[0]!.classes).filter(([, v]) => v.count > 0).map(([k,
      v]) => `${k} ${v.count}`).join(', ') || 'nothing'
    console.log(`reconcile ${label}: exit ${r.code}, wall ${r.wall}, peak RSS ${r.rssMb} MB; found ${found}`)
  }
  const naive = timed([fileURLToPath(import.meta.url), '--naive-load', id])
  console.log(`for comparison, loading users hash + rows into memory: wall ${naive.wall}, peak RSS ${naive.rssMb} MB (exit ${naive.code})`)
} finally {
  let cursor = '0'
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', `${env.KEY_PREFIX}:*`, 'COUNT', 1000)
    cursor = next
    if (found.length) await redis.unlink(...found)
  } while (cursor !== '0')
  redis.disconnect()
  await sql.end()
  await dropDatabase(base.toString())
}
