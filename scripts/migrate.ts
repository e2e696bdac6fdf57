/** npm run migrate: creates the database if missing and applies drizzle/ migrations (under an advisory lock). */
import { parseCli } from '../src/cli.js'

parseCli({
  command: 'npm run migrate --',
  summary: 'Creates the database named by DATABASE_URL if it is missing and applies the migrations in drizzle/ ' +
    '(safe to run from several processes at once).',
  options: {},
  exitCodes: [[0, 'migrations applied (or nothing to do)'], [1, 'error (configuration, PostgreSQL unreachable, ' +
    'a migration failed)'], [2, 'bad arguments']],
  env: ['DATABASE_URL'],
})

const [{ loadConfig, ConfigError }, { migrateDatabase }] = await Promise.all([import('../src/config.js'),
  import('../src/db/migrate.js')])
try {
  const config = loadConfig(process.env, 'script')
  await migrateDatabase(config.DATABASE_URL)
  console.log(`migrations applied to ${new URL(config.DATABASE_URL).pathname.slice(1)}`)
} catch (err) {
  console.error(err instanceof ConfigError ? err.message : `migrate failed: ${(err as Error).message}`)
  process.exit(1)
}
