import { loadConfig, ConfigError } from '../src/config.js'
import { createDb } from '../src/db/client.js'
import { retryFailedClaims } from '../src/worker/retry-failed.js'
import { pino } from 'pino'
import { createRedis } from '../src/redis/client.js'
import { assertNoEviction, EvictionPolicyError } from '../src/redis/eviction.js'

// npm run retry-failed [-- --limit N]: re-processes unresolved failed_claims and reports what it did.
let config
try {
  config = loadConfig(process.env, 'script')
} catch (err) {
  console.error(err instanceof ConfigError ? err.message : err)
  process.exit(1)
}
const limitArg = process.argv.indexOf('--limit')
const limit = limitArg > 0 ? Number(process.argv[limitArg + 1]) : undefined
if (limit !== undefined && !(Number.isInteger(limit) && limit > 0)) {
  console.error('--limit must be a positive integer')
  process.exit(1)
}
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
