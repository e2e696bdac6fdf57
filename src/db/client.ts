import postgres from 'postgres'
import { drizzle, type PostgresJsDatabase } from 'drizzle-orm/postgres-js'
import * as schema from './schema.js'

export type Db = PostgresJsDatabase<typeof schema>

export interface DbHandle {
  db: Db
  sql: postgres.Sql
  close: () => Promise<void>
}

export interface DbOptions {
  max?: number
  connectTimeoutS?: number
  /**
   * PostgreSQL ends a session left idle inside a transaction this long (idle_in_transaction_session_timeout),
   * releasing its locks. 0: never.
   */
  idleInTransactionTimeoutMs?: number
}

export function createDb(url: string, opts: DbOptions = {}): DbHandle {
  const sql = postgres(url, {
    max: opts.max ?? 10,
    connect_timeout: opts.connectTimeoutS ?? 5,
    ...(opts.idleInTransactionTimeoutMs
      ? { connection: { idle_in_transaction_session_timeout: opts.idleInTransactionTimeoutMs } } : {}),
    onnotice: () => {},
    // bigint ids travel as strings in the API; keep them exact.
    types: { bigint: postgres.BigInt },
  })
  const db = drizzle(sql, { schema })
  return { db, sql, close: () => sql.end({ timeout: 5 }) }
}
