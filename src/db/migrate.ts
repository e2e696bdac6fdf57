import { existsSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import postgres from 'postgres'
import { drizzle } from 'drizzle-orm/postgres-js'
import { migrate } from 'drizzle-orm/postgres-js/migrator'

/** drizzle/ sits at the package root, whether this runs from src/ (tsx) or dist/src/ (built). */
function migrationsFolder(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url))
  while (!existsSync(path.join(dir, 'drizzle', 'meta', '_journal.json'))) {
    const up = path.dirname(dir)
    if (up === dir) throw new Error('drizzle/ migrations folder not found')
    dir = up
  }
  return path.join(dir, 'drizzle')
}
// Any constant works; it only has to be the same in every process that migrates.
const MIGRATION_LOCK = 72_163_001

/** The database a URL names, and a connection to the server's `postgres` database to create or drop it. */
function adminConnection(url: string): { name: string; admin: postgres.Sql } {
  const u = new URL(url)
  const name = decodeURIComponent(u.pathname.replace(/^\//, ''))
  if (!name) throw new Error('DATABASE_URL names no database')
  u.pathname = '/postgres'
  return { name, admin: postgres(u.toString(), { max: 1, onnotice: () => {}, connect_timeout: 10 }) }
}

/** Creates the database if missing; tolerates another process creating it at the same moment. */
async function ensureDatabase(url: string): Promise<void> {
  const { name, admin } = adminConnection(url)
  try {
    const rows = await admin`SELECT 1 FROM pg_database WHERE datname = ${name}`
    if (rows.length === 0) {
      try {
        await admin.unsafe(`CREATE DATABASE "${name.replace(/"/g, '""')}"`)
      } catch (err) {
        // 42P04 duplicate_database; 23505 when two CREATEs race on pg_database's unique index.
        const code = (err as { code?: string }).code
        if (code !== '42P04' && code !== '23505') throw err
      }
    }
  } finally {
    await admin.end({ timeout: 5 })
  }
}

/** Drops the database a URL names, connections and all (the tests' and benches' private databases). */
export async function dropDatabase(url: string): Promise<void> {
  const { name, admin } = adminConnection(url)
  try {
    await admin.unsafe(`DROP DATABASE IF EXISTS "${name.replace(/"/g, '""')}" WITH (FORCE)`)
  } finally {
    await admin.end({ timeout: 5 })
  }
}

/** Applies drizzle/ migrations under a session advisory lock, so concurrent runs apply them once. */
export async function migrateDatabase(url: string): Promise<void> {
  await ensureDatabase(url)
  // One connection: the lock and the migration share the session.
  const sql = postgres(url, { max: 1, onnotice: () => {}, connect_timeout: 10 })
  try {
    await sql`SELECT pg_advisory_lock(${MIGRATION_LOCK})`
    try {
      await migrate(drizzle(sql), { migrationsFolder: migrationsFolder() })
    } finally {
      await sql`SELECT pg_advisory_unlock(${MIGRATION_LOCK})`
    }
  } finally {
    await sql.end({ timeout: 5 })
  }
}
