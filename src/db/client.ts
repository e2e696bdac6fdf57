import postgres from 'postgres'
import { drizzle, type PostgresJsDatabase } from 'drizzle-orm/postgres-js'
import * as schema from './schema.js'

export type Db = PostgresJsDatabase<typeof schema>

export interface DbHandle {
  db: Db
  sql: postgres.Sql
  close: () => Promise<void>
}

export function createDb(url: string, opts: { max?: number; connectTimeoutS?: number } = {}): DbHandle {
  const sql = postgres(url, {
    max: opts.max ?? 10,
    connect_timeout: opts.connectTimeoutS ?? 5,
    onnotice: () => {},
    // bigint ids travel as strings in the API; keep them exact.
    types: { bigint: postgres.BigInt },
  })
  const db = drizzle(sql, { schema })
  return { db, sql, close: () => sql.end({ timeout: 5 }) }
}
