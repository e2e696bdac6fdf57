import { loadConfig, ConfigError } from '../src/config.js'
import { migrateDatabase } from '../src/db/migrate.js'

try {
  const config = loadConfig(process.env, 'script')
  await migrateDatabase(config.DATABASE_URL)
  console.log(`migrations applied to ${new URL(config.DATABASE_URL).pathname.slice(1)}`)
} catch (err) {
  console.error(err instanceof ConfigError ? err.message : `migrate failed: ${(err as Error).message}`)
  process.exit(1)
}
