import { once } from 'node:events'
import { sql } from 'drizzle-orm'
import type { Db, DbHandle } from '../db/client.js'
import { claims, failedClaims } from '../db/schema.js'
import { fieldsOf, type ClaimRow, type StreamEntry } from './entry.js'

/**
 * One statement for the whole batch: column arrays through unnest (one parameter per column, not per
 * value) measured fastest here against json_to_recordset and a VALUES list (see docs/readme-worker.md).
 * Dedupes on claim_id ONLY: a redelivered entry is a no-op, while a different claim reusing a taken
 * (campaign, sequence) still fails, because that is Redis having lost writes, not a duplicate.
 */
export async function insertClaims(db: Db, rows: ClaimRow[]): Promise<number> {
  if (rows.length === 0) return 0
  const col = <T>(f: (r: ClaimRow) => T) => sql.param(rows.map(f))
  const res = await db.execute(sql`
    INSERT INTO ${claims} (claim_id, campaign_id, user_id, sequence, claimed_at)
    SELECT c, ca, u, s, to_timestamp(at / 1000.0)
    FROM unnest(${col((r) => r.claimId)}::uuid[], ${col((r) => r.campaignId)}::bigint[],
      ${col((r) => r.userId)}::text[],
      ${col((r) => r.sequence)}::int[], ${col((r) => r.claimedAt)}::float8[]) AS t(c, ca, u, s, at)
    ON CONFLICT (claim_id) DO NOTHING`)
  return (res as unknown as { count: number }).count
}

// COPY's text format: backslash, tab, newline and carriage return must be escaped; only userId can hold them.
const COPY_SPECIAL = /[\\\t\n\r]/
const COPY_ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' }
const copyText = (v: string): string => (COPY_SPECIAL.test(v) ? v.replace(/[\\\t\n\r]/g, (c) => COPY_ESCAPES[c]!) : v)

/**
 * The batch path: COPY the rows into a per-connection temporary table, then one INSERT ... SELECT ...
 * ON CONFLICT (claim_id) DO NOTHING from it, in one transaction. COPY streams the rows in the text
 * format without per-value parameters (the unnest insert sends five text arrays that the server parses
 * element by element, and the client escapes every element); the INSERT keeps the same dedupe and fires
 * the guard trigger once per statement, as before. The temporary table is created once per connection
 * (IF NOT EXISTS) and emptied at every commit (ON COMMIT DELETE ROWS), so batches on different pooled
 * connections never see each other's rows.
 */
async function copyClaims(handle: DbHandle, rows: ClaimRow[]): Promise<number> {
  if (rows.length === 0) return 0
  let text = ''
  for (const r of rows) text += `${r.claimId}\t${r.campaignId}\t${copyText(r.userId)}\t${r.sequence}\t${r.claimedAt}\n`
  return handle.sql.begin(async (tx) => {
    await tx`CREATE TEMP TABLE IF NOT EXISTS claims_staging (claim_id uuid NOT NULL, campaign_id bigint NOT NULL,
      user_id text NOT NULL, sequence int NOT NULL, claimed_at_ms bigint NOT NULL) ON COMMIT DELETE ROWS`
    const w = await tx`COPY claims_staging (claim_id, campaign_id, user_id, sequence, claimed_at_ms)
      FROM STDIN`.writable()
    w.end(text)
    await once(w, 'finish')
    const res = await tx`INSERT INTO claims (claim_id, campaign_id, user_id, sequence, claimed_at)
      SELECT claim_id, campaign_id, user_id, sequence, to_timestamp(claimed_at_ms / 1000.0) FROM claims_staging
      ON CONFLICT (claim_id) DO NOTHING`
    return res.count
  })
}

export interface PgError { code?: string; constraint_name?: string; message: string }

/** Drizzle wraps the driver's error (DrizzleQueryError, whose message repeats the query): take the driver's. */
function pgError(err: unknown): PgError {
  let e = err as PgError & { cause?: unknown }
  for (let i = 0; i < 5 && e && !e.code && e.cause; i++) e = e.cause as PgError & { cause?: unknown }
  return (e ?? { message: String(err) }) as PgError
}

/** Errors about the data of a row (class 22 data exception, 23 integrity violation), not about the connection. */
export const isRowError = (err: unknown): boolean => /^2[23]/.test(pgError(err).code ?? '')

/**
 * Refused: the guard trigger (stock, per-user limit) or a sequence already taken by another claim.
 * Retrying cannot help, so the row is dead-lettered at once. Other row errors (a campaign missing from
 * Postgres: FK violation) may heal, so those entries stay pending and are redelivered.
 */
const isRefusal = (err: unknown): boolean => {
  const e = pgError(err)
  return e.code === '23514' || (e.code === '23505' && e.constraint_name === 'claims_campaign_sequence_key')
}

const cmp = <T extends string | bigint>(x: T, y: T): number => (x < y ? -1 : x > y ? 1 : 0)

/** Stream ids "ms-seq": the earlier entry first. */
const cmpEntryId = (x: string, y: string): number => {
  const [xm, xs] = x.split('-').map(Number) as [number, number]
  const [ym, ys] = y.split('-').map(Number) as [number, number]
  return xm - ym || xs - ys
}

export interface Item { entry: StreamEntry; row: ClaimRow }
interface RowFailure { item: Item; error: string; refused: boolean }
export interface PersistResult { inserted: number; failures: RowFailure[] }

/**
 * Inserts a batch. On a row error the batch is redone row by row inside one transaction, each row under
 * a savepoint, so one bad row never blocks the others. Connection errors are thrown (the caller backs
 * off and retries the whole batch; every step is idempotent).
 */
export async function persistBatch(handle: DbHandle, items: Item[]): Promise<PersistResult> {
  const db = handle.db
  // A stable order makes two workers holding overlapping batches lock index entries in the same order,
  // and (campaign, sequence) order means that when the guard must refuse one of two claims, the row by
  // row retry keeps the earlier one in line (the earlier stream entry when both carry one sequence).
  items.sort((a, b) => cmp(a.row.campaignId,
    b.row.campaignId) || a.row.sequence - b.row.sequence || cmpEntryId(a.entry.id, b.entry.id))
  try {
    return { inserted: await copyClaims(handle, items.map((i) => i.row)), failures: [] }
  } catch (err) {
    if (!isRowError(err)) throw err
  }
  return db.transaction(async (tx) => {
    let inserted = 0
    const failures: RowFailure[] = []
    for (const item of items) {
      try {
        inserted += await tx.transaction((sp) => insertClaims(sp as unknown as Db, [item.row]))
      } catch (err) {
        if (!isRowError(err)) throw err
        failures.push({ item, error: errorText(err), refused: isRefusal(err) })
      }
    }
    return { inserted, failures }
  })
}

export const errorText = (err: unknown): string => {
  const e = pgError(err)
  if (!e.code) return String(e.message ?? err)
  return `${e.code}${e.constraint_name ? ` ${e.constraint_name}` : ''}: ${e.message}`
}

export interface DeadLetter { entry: StreamEntry; error: string }

/** Records dead letters; a later failure of the same entry overwrites the reason and reopens it. */
export async function recordFailures(db: Db, letters: DeadLetter[]): Promise<void> {
  if (letters.length === 0) return
  await db.insert(failedClaims)
    .values(letters.map((l) => ({ stream: l.entry.stream, entryId: l.entry.id, fields: fieldsOf(l.entry),
      error: l.error, attempts: l.entry.deliveries })))
    .onConflictDoUpdate({
      target: [failedClaims.stream, failedClaims.entryId],
      set: { error: sql`excluded.error`, attempts: sql`excluded.attempts`, failedAt: sql`now()`,
        resolvedAt: sql`NULL` },
    })
}
