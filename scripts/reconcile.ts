/**
 * npm run reconcile -- [--campaign ID] [--fix] [--json] [--page-size N]
 * Exit codes: 0 Redis and the database agree (or every drift was fixed), 1 drift left or evidence of
 * eviction (INFO evicted_keys > 0), 2 error (also: an evicting maxmemory-policy, refused at start).
 */
import { parseArgs } from 'node:util'
import { loadConfig } from '../src/config.js'
import { createDb, type DbHandle } from '../src/db/client.js'
import { createRedis, type RedisClient } from '../src/redis/client.js'
import { createKeys } from '../src/redis/keys.js'
import { reconcile } from '../src/reconcile/reconcile.js'
import { formatCampaign, formatSummary } from '../src/reconcile/format.js'
import { silentProgress, terminalProgress } from '../src/reconcile/progress.js'
import type { RunReport } from '../src/reconcile/report.js'
import { pino } from 'pino'

class UsageError extends Error {}

const USAGE = 'usage: npm run reconcile -- [--campaign ID] [--fix] [--json] [--page-size N]'
const started = Date.now()
const peakRss = () => process.resourceUsage().maxRSS * 1024

let json = false
let redis: RedisClient | undefined
let db: DbHandle | undefined
let run: RunReport

try {
  const { values } = parseArgs({
    options: {
      campaign: { type: 'string' }, fix: { type: 'boolean', default: false }, json: { type: 'boolean', default: false },
      'page-size': { type: 'string' }, help: { type: 'boolean', default: false },
    },
    strict: true,
  })
  json = values.json
  if (values.help) { console.log(USAGE); process.exit(0) }
  if (values.campaign !== undefined && !/^[1-9]\d{0,18}$/.test(values.campaign)) throw new UsageError(`--campaign must be a campaign id, got ${JSON.stringify(values.campaign)}`)
  const pageSize = values['page-size'] === undefined ? undefined : Number(values['page-size'])
  if (pageSize !== undefined && !(Number.isInteger(pageSize) && pageSize >= 1 && pageSize <= 100_000)) {
    throw new UsageError('--page-size must be an integer 1..100000')
  }

  const config = loadConfig(process.env, 'script')
  // Failed commands reject and end the run with exit 2; connection errors are logged (JSON, stderr, throttled).
  // A generous command timeout: a restore batch is one script over up to --page-size claims.
  redis = createRedis(config, {
    connectionName: 'fcfs-reconcile', autoPipelining: false, log: pino({ base: { role: 'reconcile' } },
      pino.destination(2)),
    commandTimeoutMs: Math.max(10_000, config.REDIS_COMMAND_TIMEOUT_MS), maxRetriesPerRequest: 1,
  })
  db = createDb(config.DATABASE_URL, { max: 2 })
  const keys = createKeys(config.KEY_PREFIX, config.STREAM_PARTITIONS)
  const progress = !json && process.stderr.isTTY ? terminalProgress(process.stderr) : silentProgress
  const result = await reconcile(redis, db.db, keys, {
    campaignId: values.campaign, fix: values.fix, pageSize, progress,
    evictionPolicyAck: config.REDIS_EVICTION_POLICY_ACK,
    onCampaign: json ? undefined : (r) => console.log(formatCampaign(r, values.fix) + '\n'),
  })
  run = { ...result, elapsedMs: Date.now() - started, peakRssBytes: peakRss() }
} catch (err) {
  const message = err instanceof Error ? err.message : String(err)
  run = { ok: false, exitCode: 2, fix: false, campaigns: [], totals: {} as RunReport['totals'], evictedKeys: null,
    error: message, elapsedMs: Date.now() - started, peakRssBytes: peakRss() }
  const usage = err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')
  if (!json) console.error(usage ? `${message}\n${USAGE}` : `reconcile failed: ${message}`)
}

if (json) console.log(JSON.stringify(run, null, 2))
else if (!run.error) console.log(formatSummary(run))
await redis?.quit().catch(() => redis?.disconnect())
await db?.close().catch(() => {})
process.exitCode = run.exitCode
