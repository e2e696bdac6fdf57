/** npm run retry-failed: re-processes unresolved failed_claims (dead letters) and reports what it did. */
import { intOption, parseCli } from '../src/cli.js'

const { values } = parseCli({
  command: 'npm run retry-failed --',
  summary: 'Inserts the claims of unresolved failed_claims rows (each row in its own transaction, FOR UPDATE SKIP ' +
    'LOCKED, so two runs split the work) and marks them resolved; a row that still fails keeps its error. ' +
    'Safe to run again.',
  options: {
    limit: { type: 'string', value: 'N', description: 'examine at most N dead letters (default: all)' },
  },
  exitCodes: [[0, 'nothing is left failing'], [1, 'error (configuration, PostgreSQL unreachable, an evicting ' +
    'Redis maxmemory-policy)'], [2, 'some dead letters still fail, or bad arguments']],
  env: ['DATABASE_URL', 'REDIS_URL', 'REDIS_COMMAND_TIMEOUT_MS', 'REDIS_EVICTION_POLICY_ACK'],
}, process.argv.slice(2), (v) => { intOption('limit', v.limit, 0, 1) })
const limit = values.limit === undefined ? undefined : Number(values.limit)

// Loaded after the arguments are parsed, so --help and a bad option cost no more than node itself.
const [{ loadConfigOrExit }, { createDb }, { retryFailedClaims }, { pino }, { createRedis },
  { assertNoEviction, EvictionPolicyError }] = await Promise.all([
  import('../src/config.js'), import('../src/db/client.js'), import('../src/worker/retry-failed.js'), import('pino'),
  import('../src/redis/client.js'), import('../src/redis/eviction.js'),
])
const config = loadConfigOrExit('script', 1)
// Runs only against a Redis that cannot evict: re-inserted claims are worth nothing if Redis drops
// the campaign they belong to (and the operator needs to hear about it first).
{
  const log = pino({ base: { role: 'retry-failed' } }, pino.destination(2))
  const redis = createRedis(config,
    { connectionName: 'fcfs-retry-failed', log, commandTimeoutMs: config.REDIS_COMMAND_TIMEOUT_MS,
      autoPipelining: false })
  try {
    await assertNoEviction(redis, config.REDIS_EVICTION_POLICY_ACK)
  } catch (err) {
    redis.disconnect()
    if (err instanceof EvictionPolicyError) {
      console.error(`retry-failed: ${err.message}`)
      process.exit(1)
    }
    // Redis unreachable: the dead letters go to PostgreSQL only, so the run goes on.
    console.error(`retry-failed: could not check the Redis eviction policy: ${(err as Error).message}`)
  }
  redis.disconnect()
}
const db = createDb(config.DATABASE_URL, { max: 1 })
try {
  const report = await retryFailedClaims(db.db, { limit })
  for (const d of report.details) {
    const why = d.error ? `: ${d.error}` : ''
    console.log(`${d.outcome.padEnd(15)} failed_claims #${d.id} ${d.stream} ${d.entryId}${why}`)
  }
  console.log(`retry-failed: examined ${report.examined}, inserted ${report.inserted}, ` +
    `already present ${report.alreadyPresent}, still failing ${report.stillFailing}`)
  process.exitCode = report.stillFailing > 0 ? 2 : 0
} catch (err) {
  console.error(`retry-failed failed: ${(err as Error).message}`)
  process.exitCode = 1
} finally {
  await db.close()
}
