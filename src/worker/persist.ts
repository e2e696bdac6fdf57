import { once } from 'node:events'
import { sql } from 'drizzle-orm'
import type { Db, DbHandle } from '../db/client.js'
import { claims, failedClaims } from '../db/schema.js'
import { withTimeout } from '../timeout.js'
import { fieldsOf, type ClaimRow, type LifecycleEvent, type StreamEntry } from './entry.js'

/** A claim with what its lifecycle events (in the same batch) say about it. */
interface LifecycleRow extends ClaimRow {
  confirmedAt: number | null
  cancelledAt: number | null
  cancelReason: string | null
  expiredAt: number | null
}

function applyEvent(r: LifecycleRow, e: LifecycleEvent): void {
  if (e.kind === 'cancel') {
    r.cancelledAt ??= e.at
    r.cancelReason ??= e.reason
  } else if (e.kind === 'confirm') r.confirmedAt ??= e.at
  else r.expiredAt ??= e.at
}

const lifecycleRow = (row: ClaimRow): LifecycleRow => ({ ...row, confirmedAt: null, cancelledAt: null,
  cancelReason: null, expiredAt: null })

const ts = (ms: number | null | undefined) => (ms == null ? null : ms / 1000)

/**
 * Row by row (the retry after a row error): a claim without events is inserted, deduped on claim_id
 * ONLY: a redelivered entry is a no-op, while a different claim reusing a taken (campaign, sequence)
 * still fails, because that is Redis having lost writes, not a duplicate. A claim with events is
 * upserted: a missing row is created in its final state (a cancellation reclaimed before its claim
 * leaves a cancelled row, and the claim's own insert is then a no-op); an existing row gets each
 * timestamp once (COALESCE: a redelivered event changes nothing), and only real transitions update it.
 */
async function writeRow(db: Db, r: LifecycleRow, lifecycle: boolean): Promise<number> {
  const res = await db.execute(sql`
    INSERT INTO ${claims} (claim_id, campaign_id, user_id, sequence, claimed_at, hold_expires_at, confirmed_at,
      cancelled_at, cancel_reason, expired_at)
    VALUES (${r.claimId}::uuid, ${r.campaignId}::bigint, ${r.userId}, ${r.sequence},
      to_timestamp(${r.claimedAt / 1000}::float8), to_timestamp(${ts(r.holdUntil)}::float8),
      to_timestamp(${ts(r.confirmedAt)}::float8), to_timestamp(${ts(r.cancelledAt)}::float8), ${r.cancelReason}::text,
      to_timestamp(${ts(r.expiredAt)}::float8))
    ${sql.raw(lifecycle ? UPSERT : INSERT_ONCE)}`)
  return (res as unknown as { count: number }).count
}

/** Lifecycle columns an event fills; each is set once (COALESCE: a redelivered event changes nothing). */
const LIFECYCLE_COLUMNS = ['hold_expires_at', 'confirmed_at', 'cancelled_at', 'cancel_reason', 'expired_at']
/** A real transition: one of these is new. */
const TRANSITION_COLUMNS = ['confirmed_at', 'cancelled_at', 'expired_at']

/** The upsert rule of a claim with events, for both paths (row by row and the batch's INSERT ... SELECT). */
const UPSERT = `ON CONFLICT (claim_id) DO UPDATE SET
  ${LIFECYCLE_COLUMNS.map((c) => `${c} = COALESCE(claims.${c}, EXCLUDED.${c})`).join(',\n  ')}
  WHERE ${TRANSITION_COLUMNS.map((c) => `(EXCLUDED.${c} IS NOT NULL AND claims.${c} IS NULL)`).join('\n     OR ')}`
/** A claim without events: a redelivered entry is a no-op. */
const INSERT_ONCE = 'ON CONFLICT (claim_id) DO NOTHING'

/** Claims with lifecycle events first: a unit given back may be the one another claim of the batch took. */
const releasesFirst = (groups: Group[]): Group[] => [...groups.filter((g) => g.lifecycle),
  ...groups.filter((g) => !g.lifecycle)]

// COPY's text format: backslash, tab, newline and carriage return must be escaped; only userId and the
// cancel reason can hold them. \N is NULL.
const COPY_SPECIAL = /[\\\t\n\r]/
const COPY_ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' }
const copyText = (v: string): string => (COPY_SPECIAL.test(v) ? v.replace(/[\\\t\n\r]/g, (c) => COPY_ESCAPES[c]!) : v)
const copyOpt = (v: number | string | null | undefined): string =>
  (v == null ? '\\N' : typeof v === 'string' ? copyText(v) : String(v))

const STAGING_COLUMNS = `claim_id uuid NOT NULL, campaign_id bigint NOT NULL, user_id text NOT NULL,
  sequence int NOT NULL, claimed_at_ms bigint NOT NULL, hold_until_ms bigint, confirmed_at_ms bigint,
  cancelled_at_ms bigint, cancel_reason text, expired_at_ms bigint, lifecycle boolean NOT NULL`

/** Claims with lifecycle events: upserted by the one UPSERT rule, each timestamp set once. */
const UPSERT_STAGED = `WITH w AS (
  INSERT INTO claims (claim_id, campaign_id, user_id, sequence, claimed_at, hold_expires_at, confirmed_at,
    cancelled_at, cancel_reason, expired_at)
  SELECT claim_id, campaign_id, user_id, sequence, to_timestamp(claimed_at_ms / 1000.0),
    to_timestamp(hold_until_ms / 1000.0), to_timestamp(confirmed_at_ms / 1000.0),
    to_timestamp(cancelled_at_ms / 1000.0), cancel_reason, to_timestamp(expired_at_ms / 1000.0)
  FROM claims_batch_staging WHERE lifecycle
  ${UPSERT}
  RETURNING 1) SELECT count(*)::int AS n FROM w`

/** Plain claims: inserted, a redelivered one is a no-op. */
const INSERT_STAGED = `WITH w AS (
  INSERT INTO claims (claim_id, campaign_id, user_id, sequence, claimed_at, hold_expires_at)
  SELECT claim_id, campaign_id, user_id, sequence, to_timestamp(claimed_at_ms / 1000.0),
    to_timestamp(hold_until_ms / 1000.0)
  FROM claims_batch_staging WHERE NOT lifecycle
  ${INSERT_ONCE}
  RETURNING 1) SELECT count(*)::int AS n FROM w`

/**
 * The batch path: COPY the rows into a per-connection temporary table, then write them to claims in ONE
 * simple-protocol message holding both statements. COPY streams the rows in the text format without
 * per-value parameters (the unnest insert sends text arrays that the server parses element by element,
 * and the client escapes every element). Claims with lifecycle events in the batch are upserted first
 * (units given back before the ones taken are checked: a returned unit may be the one a claim of the same
 * batch took), then plain claims are inserted ON CONFLICT (claim_id) DO NOTHING; the guard triggers fire
 * once per statement.
 *
 * No explicit transaction: PostgreSQL runs the statements of one Query message as one implicit transaction,
 * committed (or rolled back on an error) without waiting for the client. The guard triggers lock the
 * campaign's row, so a worker frozen (SIGSTOP, a GC pause, a partition) between a statement and its COMMIT
 * used to hold that lock, and every other worker's batches of the campaign waited behind it, once per
 * inflight connection of the frozen worker. Now no lock on a shared table outlives the server's execution
 * of that one message. The staging table is the session's own (a temporary table on the reserved
 * connection), emptied before each batch.
 */
async function copyGroups(handle: DbHandle, groups: Group[]): Promise<number> {
  if (groups.length === 0) return 0
  let text = ''
  let events = false
  for (const { row: r, lifecycle } of groups) {
    events ||= lifecycle
    text += `${r.claimId}\t${r.campaignId}\t${copyText(r.userId)}\t${r.sequence}\t${r.claimedAt}\t` +
      `${copyOpt(r.holdUntil)}\t${copyOpt(r.confirmedAt)}\t${copyOpt(r.cancelledAt)}\t${copyOpt(r.cancelReason)}\t` +
      `${copyOpt(r.expiredAt)}\t${lifecycle ? 't' : 'f'}\n`
  }
  const conn = await handle.sql.reserve()
  try {
    await conn.unsafe(`CREATE TEMP TABLE IF NOT EXISTS claims_batch_staging (${STAGING_COLUMNS});
      DELETE FROM claims_batch_staging`).simple()
    const w = await conn`COPY claims_batch_staging (claim_id, campaign_id, user_id, sequence, claimed_at_ms,
      hold_until_ms, confirmed_at_ms, cancelled_at_ms, cancel_reason, expired_at_ms, lifecycle) FROM STDIN`.writable()
    w.end(text)
    await once(w, 'finish')
    if (!events) {
      const [row] = await conn.unsafe<{ n: number }[]>(INSERT_STAGED).simple()
      return row?.n ?? 0
    }
    const res = await conn.unsafe(`${UPSERT_STAGED};\n${INSERT_STAGED}`).simple() as unknown as { n: number }[][]
    return res.reduce((sum, r) => sum + (r[0]?.n ?? 0), 0)
  } finally {
    conn.release()
  }
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
 * Refused for good: a sequence already taken by another claim (Redis lost writes). Retrying cannot help,
 * so the row is dead-lettered at once. The guard trigger's refusals (stock, per-user limit) are not
 * final since units can come back: the cancellation that freed the unit may sit in another batch or a
 * dead consumer's pending list, so those entries, like other row errors (a campaign missing from
 * Postgres: FK violation), stay pending and are redelivered until MAX_DELIVERIES.
 */
const isRefusal = (err: unknown): boolean => {
  const e = pgError(err)
  return e.code === '23505' && e.constraint_name === 'claims_campaign_sequence_key'
}

const cmp = <T extends string | bigint>(x: T, y: T): number => (x < y ? -1 : x > y ? 1 : 0)

/** Stream ids "ms-seq": the earlier entry first. */
const cmpEntryId = (x: string, y: string): number => {
  const [xm, xs] = x.split('-').map(Number) as [number, number]
  const [ym, ys] = y.split('-').map(Number) as [number, number]
  return xm - ym || xs - ys
}

export interface Item { entry: StreamEntry; row: ClaimRow; event?: LifecycleEvent }
interface RowFailure { item: Item; error: string; refused: boolean }
export interface PersistResult { inserted: number; failures: RowFailure[] }

/** One claim of a batch: its row with the batch's events applied, and the entries that spoke of it. */
interface Group { row: LifecycleRow; items: Item[]; lifecycle: boolean }

function groupItems(items: Item[]): Group[] {
  const byClaim = new Map<string, Group>()
  for (const item of items) {
    let g = byClaim.get(item.row.claimId)
    if (!g) {
      g = { row: lifecycleRow(item.row), items: [], lifecycle: false }
      byClaim.set(item.row.claimId, g)
    }
    g.items.push(item)
    if (item.row.holdUntil != null) g.row.holdUntil ??= item.row.holdUntil
    if (item.event) {
      applyEvent(g.row, item.event)
      g.lifecycle = true
    }
  }
  return [...byClaim.values()]
}

/**
 * Persists a batch of claims and lifecycle events. On a row error the batch is redone claim by claim, each
 * in its own statement, so one bad row never blocks the others. Connection
 * errors are thrown (the caller backs off and retries the whole batch; every step is idempotent).
 */
export async function persistBatch(handle: DbHandle, items: Item[], opts: { stepMs?: number } = {}):
  Promise<PersistResult> {
  const db = handle.db
  // Each step (the batch's write, or one row's) abandoned after stepMs: see persistStepMs in loop.ts.
  const bounded = <T>(p: Promise<T>, what: string) => (opts.stepMs ? withTimeout(p, opts.stepMs, what) : p)
  // A stable order makes two workers holding overlapping batches lock index entries in the same order,
  // and (campaign, sequence) order means that when the guard must refuse one of two claims, the row by
  // row retry keeps the earlier one in line (the earlier stream entry when both carry one sequence).
  items.sort((a, b) => cmp(a.row.campaignId,
    b.row.campaignId) || a.row.sequence - b.row.sequence || cmpEntryId(a.entry.id, b.entry.id))
  const groups = groupItems(items)
  try {
    return { inserted: await bounded(copyGroups(handle, groups), 'batch write'), failures: [] }
  } catch (err) {
    if (!isRowError(err)) throw err
  }
  // Each row its own statement and transaction (autocommit), for the reason the batch path has no explicit
  // transaction: no lock on the guard row waits for this worker between statements. Every write is
  // idempotent, so a batch cut short here is redone whole.
  let inserted = 0
  const failures: RowFailure[] = []
  for (const g of releasesFirst(groups)) {
    try {
      inserted += await bounded(writeRow(db, g.row, g.lifecycle), 'row write')
    } catch (err) {
      if (!isRowError(err)) throw err
      const error = errorText(err)
      for (const item of g.items) failures.push({ item, error, refused: isRefusal(err) })
    }
  }
  return { inserted, failures }
}

/** Persists parsed entries outside the worker (retry-failed): the row-by-row statements, one transaction. */
export async function writeEntries(db: Db, parsed: Item[]): Promise<number> {
  const groups = groupItems(parsed)
  return db.transaction(async (tx) => {
    let n = 0
    for (const g of releasesFirst(groups)) {
      n += await writeRow(tx as unknown as Db, g.row, g.lifecycle)
    }
    return n
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
