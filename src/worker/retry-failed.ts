import { and, asc, eq, isNull, sql } from 'drizzle-orm'
import type { Db } from '../db/client.js'
import { failedClaims } from '../db/schema.js'
import { parseFields } from './entry.js'
import { errorText, isRowError, writeEntries } from './persist.js'

type RetryOutcome = 'inserted' | 'already_present' | 'still_failing'

export interface RetryReport {
  examined: number
  inserted: number
  alreadyPresent: number
  stillFailing: number
  details: { id: string; stream: string; entryId: string; outcome: RetryOutcome; error?: string }[]
}

/**
 * Re-processes unresolved failed_claims. Each row is handled in its own transaction under a row lock
 * (SKIP LOCKED, so two concurrent runs split the work): the claim is inserted (a no-op if it is already
 * there) and the dead letter marked resolved in the same commit, so a rerun finds nothing left to do.
 */
export async function retryFailedClaims(db: Db, opts: { limit?: number } = {}): Promise<RetryReport> {
  const ids = await db.select({ id: failedClaims.id }).from(failedClaims)
    .where(isNull(failedClaims.resolvedAt)).orderBy(asc(failedClaims.id)).limit(opts.limit ?? 100_000)
  const report: RetryReport = { examined: 0, inserted: 0, alreadyPresent: 0, stillFailing: 0, details: [] }
  for (const { id } of ids) {
    const detail = await db.transaction(async (tx) => {
      const [f] = await tx.select().from(failedClaims)
        .where(and(eq(failedClaims.id, id), isNull(failedClaims.resolvedAt))).for('update', { skipLocked: true })
      if (!f) return null
      const base = { id: String(f.id), stream: f.stream, entryId: f.entryId }
      const row = parseFields(f.fields as Record<string, string>)
      let error: string
      if (typeof row === 'string') {
        error = `unparsable entry: ${row}`
      } else {
        try {
          const { event, ...claim } = 'event' in row ? row : { ...row, event: undefined }
          const item = { entry: { stream: f.stream, id: f.entryId, raw: null, deliveries: f.attempts }, row: claim,
            ...(event ? { event } : {}) }
          const n = await tx.transaction((sp) => writeEntries(sp as unknown as Db, [item]))
          await tx.update(failedClaims).set({ resolvedAt: sql`now()` }).where(eq(failedClaims.id, f.id))
          return { ...base, outcome: (n === 1 ? 'inserted' : 'already_present') as RetryOutcome }
        } catch (err) {
          if (!isRowError(err)) throw err
          error = errorText(err)
        }
      }
      await tx.update(failedClaims).set({ error, attempts: sql`${failedClaims.attempts} + 1`,
        failedAt: sql`now()` }).where(eq(failedClaims.id, f.id))
      return { ...base, outcome: 'still_failing' as RetryOutcome, error }
    })
    if (!detail) continue
    report.examined++
    if (detail.outcome === 'inserted') report.inserted++
    else if (detail.outcome === 'already_present') report.alreadyPresent++
    else report.stillFailing++
    report.details.push(detail)
  }
  return report
}
