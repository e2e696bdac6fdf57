/** npm run reconcile: compares Redis with PostgreSQL per campaign and, with --fix, repairs (docs/reconcile.md). */
import { CAMPAIGN_ID } from '../src/campaigns/schemas.js'
import { intOption, parseCli, UsageError, type CliSpec } from '../src/cli.js'
import type { DbHandle } from '../src/db/client.js'
import type { RunReport } from '../src/reconcile/report.js'
import type { RedisClient } from '../src/redis/client.js'

const RECONCILE_CLI = {
  command: 'npm run reconcile --',
  summary: 'Checks that Redis (counters, user records, streams) and PostgreSQL (claims) agree, per campaign; ' +
    'with --fix repairs what can be repaired, then checks again.',
  options: {
    campaign: { type: 'string', value: 'ID', description: 'check one campaign (default: every campaign in the ' +
      'database)' },
    fix: { type: 'boolean', description: 'repair, then check again and report what is left' },
    json: { type: 'boolean', description: 'print one JSON document on stdout instead of the table (nothing else ' +
      'on stdout)' },
    'page-size': { type: 'string', value: 'N', description: 'entries per HSCAN / XRANGE / database page and per ' +
      'repair script, 1..100000 (default 1000)' },
  },
  exitCodes: [[0, 'Redis and PostgreSQL agree (or --fix repaired every difference)'], [1,
    'drift found and not (entirely) fixed, or evidence of eviction (INFO evicted_keys > 0)'], [2,
    'error: bad arguments, unknown campaign, Redis or PostgreSQL unreachable, an evicting maxmemory-policy']],
  env: ['REDIS_URL', 'DATABASE_URL', 'KEY_PREFIX', 'STREAM_PARTITIONS', 'REDIS_COMMAND_TIMEOUT_MS',
    'REDIS_EVICTION_POLICY_ACK'],
} satisfies CliSpec

const { values } = parseCli(RECONCILE_CLI, process.argv.slice(2), (v) => {
  if (v.campaign !== undefined && !CAMPAIGN_ID.test(v.campaign)) {
    throw new UsageError(`--campaign must be a campaign id (1 to 18 digits), got ${JSON.stringify(v.campaign)}`)
  }
  intOption('page-size', v['page-size'], 1000, 1, 100_000)
})
// Loaded after the arguments are parsed, so --help and a bad option cost no more than node itself.
const [{ pino }, { loadConfig }, { createDb }, { createRedis }, { createKeys }, { reconcile }, { formatCampaign,
  formatRecoveries, formatSummary }, { silentProgress, terminalProgress }] = await Promise.all([
  import('pino'), import('../src/config.js'), import('../src/db/client.js'), import('../src/redis/client.js'),
  import('../src/redis/keys.js'),
  import('../src/reconcile/reconcile.js'), import('../src/reconcile/format.js'), import('../src/reconcile/progress.js'),
])
const started = Date.now()
const peakRss = () => process.resourceUsage().maxRSS * 1024

const json = values.json ?? false
const fix = values.fix ?? false
let redis: RedisClient | undefined
let db: DbHandle | undefined
let run: RunReport

try {
  const pageSize = values['page-size'] === undefined ? undefined : intOption('page-size', values['page-size'], 1000,
    1, 100_000)
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
    campaignId: values.campaign, fix, pageSize, progress, evictionPolicyAck: config.REDIS_EVICTION_POLICY_ACK,
    onCampaign: json ? undefined : (r) => console.log(formatCampaign(r, fix) + '\n'),
  })
  run = { ...result, elapsedMs: Date.now() - started, peakRssBytes: peakRss() }
} catch (err) {
  const message = err instanceof Error ? err.message : String(err)
  run = { ok: false, exitCode: 2, fix: false, campaigns: [], totals: {} as RunReport['totals'], evictedKeys: null,
    error: message, elapsedMs: Date.now() - started, peakRssBytes: peakRss() }
  if (!json) console.error(`reconcile failed: ${message}`)
}

if (json) console.log(JSON.stringify(run, null, 2))
else if (!run.error) {
  const recovered = formatRecoveries(run)
  if (recovered) console.log(recovered + '\n')
  console.log(formatSummary(run))
}
await redis?.quit().catch(() => redis?.disconnect())
await db?.close().catch(() => {})
process.exitCode = run.exitCode
