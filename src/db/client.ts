import { readFileSync } from 'node:fs'
import net from 'node:net'
import { fileURLToPath } from 'node:url'
import postgres from 'postgres'
import { drizzle, type PostgresJsDatabase } from 'drizzle-orm/postgres-js'
import { TimeoutError } from '../timeout.js'
import * as schema from './schema.js'

export type Db = PostgresJsDatabase<typeof schema>

export interface DbHandle {
  db: Db
  sql: postgres.Sql
  close: () => Promise<void>
}

export interface DbOptions {
  max?: number
  /** A connection attempt (TCP, startup, authentication) fails after this long. */
  connectTimeoutMs?: number
  /**
   * Bounds every request on a connection: PostgreSQL cancels a statement running longer
   * (statement_timeout), and a connection on which PostgreSQL has sent nothing for this long plus
   * SILENCE_MARGIN_MS while a request is outstanding (a black-holed network, a frozen server) is destroyed,
   * which fails its queries with ETIMEDOUT (backend unavailable). 0: no bound (the one-shot scripts, whose
   * statements may legitimately run long).
   */
  statementTimeoutMs?: number
  /** A statement waiting this long for a lock fails (lock_timeout, 55P03). 0: waits as long as the statement may. */
  lockTimeoutMs?: number
  /**
   * PostgreSQL ends a session left idle inside a transaction this long (idle_in_transaction_session_timeout),
   * releasing its locks. 0: never.
   */
  idleInTransactionTimeoutMs?: number
}

const SILENCE_MARGIN_MS = 500

/**
 * The driver carries a fix applied at install (scripts/patch-postgres.mjs): without it a connection closed
 * while a small write is pending throws outside any caller and ends the process. Refuse to run without it.
 */
function assertDriverPatched(): void {
  const fixes = [['./connection.js', 'fcfs-patch: nextWrite without a socket'],
    ['./connection.js', 'fcfs-patch: array types failure handled'],
    ['./connection.js', 'fcfs-patch: copy final fails with its connection'],
    ['./index.js', 'fcfs-patch: reserve leaves the queue'],
    ['./index.js', 'fcfs-patch: a reserved connection that closes fails its holder']]
  for (const [rel, marker] of fixes) {
    const file = fileURLToPath(new URL(rel!, import.meta.resolve('postgres')))
    if (!readFileSync(file, 'utf8').includes(marker!)) {
      throw new Error(`the postgres driver at ${file} lacks the fix of scripts/patch-postgres.mjs: ` +
        'run `node scripts/patch-postgres.mjs` (npm install runs it as postinstall)')
    }
  }
}

/**
 * A socket that is destroyed when PostgreSQL stays silent for `silenceMs` while the client waits for an
 * answer: armed by a write, re-armed by every byte received, disarmed when a chunk ends with ReadyForQuery
 * (the server waits for the client). TCP alone never notices a peer that accepts bytes and never answers.
 */
function watchedSocket(host: string | undefined, port: number, path: string | undefined, silenceMs: number) {
  const s = path ? net.connect(path) : net.connect(port, host)
  let timer: NodeJS.Timeout | null = null
  let heard = 0
  // Decided after the event loop's next poll: in a process resumed from a pause (SIGSTOP, a long GC) the
  // overdue timer runs before the answer that arrived meanwhile is read.
  const silent = () => {
    const before = heard
    setImmediate(() => {
      if (heard === before && timer) {
        s.destroy(Object.assign(new Error(
          `PostgreSQL sent nothing for ${silenceMs} ms while a request was outstanding`), { code: 'ETIMEDOUT' }))
      }
    })
  }
  const write = s.write.bind(s) as (...args: unknown[]) => boolean
  s.write = ((...args: unknown[]) => {
    timer ??= setTimeout(silent, silenceMs)
    return write(...args)
  }) as typeof s.write
  s.on('data', (chunk: Buffer) => {
    heard++
    const n = chunk.length
    // ReadyForQuery: 'Z', int32 length 5, one status byte.
    if (n >= 6 && chunk[n - 6] === 0x5a && chunk.readInt32BE(n - 5) === 5) {
      if (timer) clearTimeout(timer)
      timer = null
    } else timer?.refresh()
  })
  s.on('close', () => { if (timer) clearTimeout(timer) })
  return s
}

type Settle = (x: unknown) => void

/**
 * The pool-acquire bound: a query still waiting for a pool connection after `ms` is withdrawn (the driver's
 * cancel: taken out of the queue, rejected with 57014, never sent); a reservation not granted by then is
 * abandoned (rejected with a TimeoutError; a connection granted later is released at once); a transaction
 * whose callback has not started by then is abandoned (rejected with a TimeoutError; should a connection
 * come later, its callback throws before writing anything and the driver rolls back). Queries already sent
 * are bounded by the statement timeout and the silence watchdog.
 */
function boundAcquire(sql: postgres.Sql, ms: number): postgres.Sql {
  const notAcquired = () => new TimeoutError(`no PostgreSQL connection within ${ms} ms`)
  return new Proxy(sql, {
    get(target, prop, receiver) {
      if (prop === 'unsafe') {
        return (...args: Parameters<postgres.Sql['unsafe']>) => {
          const q = target.unsafe(...args)
          const pending = q as unknown as { state?: unknown; resolve: Settle; reject: Settle }
          // cancel() answers with a promise of its own (a CancelRequest on a fresh connection once the query
          // is sent), which rejects while PostgreSQL refuses connections: never left unhandled.
          const timer = setTimeout(() => {
            if (!pending.state) (q.cancel() as unknown as Promise<void>)?.catch?.(() => {})
          }, ms)
          const { resolve, reject } = pending
          pending.resolve = (x) => { clearTimeout(timer); resolve(x) }
          pending.reject = (x) => { clearTimeout(timer); reject(x) }
          return q
        }
      }
      if (prop === 'reserve') {
        return () => {
          const reserving = target.reserve()
          let timer: NodeJS.Timeout | undefined
          const late = new Promise<never>((_resolve, rejectLate) => {
            timer = setTimeout(() => {
              reserving.then((conn) => conn.release(), () => {})
              rejectLate(notAcquired())
            }, ms)
          })
          return Promise.race([reserving, late]).finally(() => clearTimeout(timer))
        }
      }
      if (prop === 'begin') {
        return (...args: unknown[]) => {
          const fn = args.pop() as (tx: postgres.TransactionSql) => unknown
          let started = false
          let abandoned = false
          let timer: NodeJS.Timeout | undefined
          const late = new Promise<never>((_resolve, rejectLate) => {
            timer = setTimeout(() => {
              if (started) return
              abandoned = true
              rejectLate(notAcquired())
            }, ms)
          })
          const begin = target.begin as (...a: unknown[]) => Promise<unknown>
          const run = begin(...args, (tx: postgres.TransactionSql) => {
            clearTimeout(timer)
            if (abandoned) throw notAcquired()
            started = true
            return fn(tx)
          })
          run.catch(() => {})
          return Promise.race([run, late])
        }
      }
      return Reflect.get(target, prop, receiver) as unknown
    },
  })
}

/** One host without TLS: the watchdog socket applies (the driver's own socket otherwise). */
function plainSingleHost(url: string): boolean {
  const u = new URL(url)
  return !u.host.includes(',') && !/ssl/i.test(u.search)
}

export function createDb(url: string, opts: DbOptions = {}): DbHandle {
  assertDriverPatched()
  const statementMs = opts.statementTimeoutMs ?? 0
  const connection: Record<string, number> = {}
  if (statementMs) connection.statement_timeout = statementMs
  if (opts.lockTimeoutMs) connection.lock_timeout = opts.lockTimeoutMs
  if (opts.idleInTransactionTimeoutMs) connection.idle_in_transaction_session_timeout = opts.idleInTransactionTimeoutMs
  const raw = postgres(url, {
    max: opts.max ?? 10,
    connect_timeout: (opts.connectTimeoutMs ?? 5000) / 1000,
    // The driver's default backoff grows with every failed connect of the pool, to 10-20 s: a request
    // arriving after an outage's first seconds waited that long before its connection was even tried.
    backoff: (retries: number) => Math.min(0.05 * 2 ** retries, 0.5),
    connection,
    ...(statementMs && plainSingleHost(url)
      ? { socket: (o: { host: string[]; port: number[]; path?: string }) =>
          watchedSocket(o.host[0], o.port[0] ?? 5432, o.path || undefined, statementMs + SILENCE_MARGIN_MS) }
      : {}),
    onnotice: () => {},
    // bigint ids travel as strings in the API; keep them exact.
    types: { bigint: postgres.BigInt },
  })
  const sql = statementMs ? boundAcquire(raw, statementMs) : raw
  const db = drizzle(sql, { schema })
  return { db, sql, close: () => raw.end({ timeout: 5 }) }
}
