/**
 * The three places a claim can be, each read in pages so memory stays flat however big the campaign:
 * the users hash (HSCAN), the partition stream (XRANGE) and the claims table (keyset on sequence).
 */
import { and, asc, eq, gt, isNull, lte, sql } from 'drizzle-orm'
import type { Db } from '../db/client.js'
import { claims, failedClaims } from '../db/schema.js'
import { MARK_OF, parseUserRecord } from '../redis/users-record.js'
import { rawClaim, rawEvent } from '../redis/stream-entry.js'
import type { ClaimRecord } from './restore-users.js'
import type { RedisClient } from '../redis/client.js'

export const PAGE_SIZE = 1000

/** One user's record (either format, see users-record.ts) as claims; malformed parts are returned apart. */
export function parseRecord(userId: string, record: string):
  { claims: (ClaimRecord & { mark?: string })[]; malformed: string[] } {
  const parsed = parseUserRecord(record)
  return { claims: parsed.claims.map((c) => ({ userId, sequence: c.sequence, claimId: c.claimId,
    claimedAt: c.claimedAt, ...(c.mark ? { mark: c.mark } : {}) })), malformed: parsed.malformed }
}

/** HSCAN pages of the users hash. A field may come twice (HSCAN's guarantee is at least once). */
export async function* scanUsers(redis: RedisClient, usersKey: string, count = PAGE_SIZE): AsyncGenerator<[string,
  string][]> {
  let cursor = '0'
  do {
    const [next, flat] = await redis.hscan(usersKey, cursor, 'COUNT', count)
    cursor = next
    const page: [string, string][] = []
    for (let i = 0; i < flat.length; i += 2) page.push([flat[i]!, flat[i + 1]!])
    if (page.length) yield page
  } while (cursor !== '0')
}

export interface StreamClaim extends ClaimRecord {
  entryId: string; /** set on lifecycle events (cancel, confirm, expire) */ type?: string }

/**
 * XRANGE pages of a partition stream, keeping only the campaign's entries. Entries a consumer holds
 * but has not acked (pending) are still in the stream, so they are seen too; an entry leaves the stream
 * only once the worker has committed it to the database.
 */
export async function* scanStream(redis: RedisClient, streamKey: string, campaignId: string, count = PAGE_SIZE):
  AsyncGenerator<{ claims: StreamClaim[]; read: number }> {
  let start = '-'
  for (;;) {
    const entries = await redis.xrange(streamKey, start, '+', 'COUNT', count)
    if (entries.length === 0) return
    const page: StreamClaim[] = []
    for (const [entryId, flat] of entries) {
      // Compact and old five-field entries alike; a lifecycle event carries its whole claim and its type.
      const ev = rawClaim(flat) ? null : rawEvent(flat)
      const f = ev ? ev.claim : rawClaim(flat)
      if (!f || f.campaignId !== campaignId) continue
      const sequence = Number(f.sequence)
      if (!Number.isSafeInteger(sequence) || sequence < 1 || !f.claimId || f.userId === undefined) continue
      page.push({ entryId, claimId: f.claimId, userId: f.userId, sequence, claimedAt: Number(f.claimedAt),
        ...(ev ? { type: ev.kind } : {}) })
    }
    yield { claims: page, read: entries.length }
    if (entries.length < count) return
    start = '(' + entries[entries.length - 1]![0]
  }
}

/**
 * The campaign's rows in sequence order, one window of pageSize sequences per query. Sequences are
 * unique per campaign, so a window holds at most pageSize rows and every query is a short range scan
 * of the (campaign_id, sequence) index, whatever the planner's statistics say: a plain
 * "sequence > last ORDER BY sequence LIMIT n" keyset can be planned as a sort of all remaining rows
 * right after a bulk load, which makes the walk quadratic.
 */
export async function* scanClaims(db: Db, campaignId: string, pageSize = PAGE_SIZE): AsyncGenerator<(ClaimRecord & {
  released: boolean; mark?: string })[]> {
  const campaign = BigInt(campaignId)
  const nextAfter = async (after: number): Promise<number | null> => {
    const [r] = await db.select({ s: claims.sequence }).from(claims)
      .where(and(eq(claims.campaignId, campaign), gt(claims.sequence, after)))
      .orderBy(asc(claims.sequence)).limit(1)
    return r ? r.s - 1 : null
  }
  let after: number | null = 0
  while (after !== null) {
    const rows = await db.select({ claimId: claims.claimId, userId: claims.userId, sequence: claims.sequence,
      claimedAt: claims.claimedAt,
      released: sql<boolean>`(${claims.cancelledAt} IS NOT NULL OR ${claims.expiredAt} IS NOT NULL)`,
      // The users-record mark the row's state stands for.
      mark: sql<string>`CASE WHEN ${claims.cancelledAt} IS NOT NULL THEN ${MARK_OF.cancelled}::text
        WHEN ${claims.expiredAt} IS NOT NULL THEN ${MARK_OF.expired}::text
        WHEN ${claims.confirmedAt} IS NOT NULL THEN ${MARK_OF.confirmed}::text
        WHEN ${claims.holdExpiresAt} IS NOT NULL THEN ${MARK_OF.held}::text ELSE '' END` })
      .from(claims)
      .where(and(eq(claims.campaignId, campaign), gt(claims.sequence, after), lte(claims.sequence, after + pageSize)))
      .orderBy(asc(claims.sequence))
    if (rows.length > 0) {
      yield rows.map((r) => ({ claimId: r.claimId, userId: r.userId, sequence: r.sequence,
        claimedAt: r.claimedAt.getTime(), released: r.released, ...(r.mark ? { mark: r.mark } : {}) }))
      after += pageSize
    } else {
      // An empty window: jump over the gap to the next row, or stop when there is none.
      after = await nextAfter(after)
    }
  }
}

export async function claimStats(db: Db, campaignId: string): Promise<{
  rows: number; maxSequence: number; released: number }> {
  const [r] = await db.select({ rows: sql<number>`count(*)::int`,
    maxSequence: sql<number>`coalesce(max(${claims.sequence}), 0)::int`,
    released: sql<number>`count(*) FILTER (WHERE ${claims.cancelledAt} IS NOT NULL
          OR ${claims.expiredAt} IS NOT NULL)::int` })
    .from(claims).where(eq(claims.campaignId, BigInt(campaignId)))
  return { rows: r!.rows, maxSequence: r!.maxSequence, released: r!.released }
}

/**
 * Unresolved dead letters of the campaign (claims the worker gave up on), in pages. The worker stores
 * the stream entry's fields as they were, so claimId/sequence are read from there.
 */
export async function* scanDeadLetters(db: Db, campaignId: string, pageSize = PAGE_SIZE):
  AsyncGenerator<{ claimId: string; sequence: number }[]> {
  let after = 0n
  for (;;) {
    const rows = await db.select({ id: failedClaims.id, fields: failedClaims.fields })
      .from(failedClaims)
      .where(and(isNull(failedClaims.resolvedAt), gt(failedClaims.id, after),
        sql`${failedClaims.fields}->>'campaignId' = ${campaignId}`))
      .orderBy(asc(failedClaims.id))
      .limit(pageSize)
    if (rows.length === 0) return
    const page: { claimId: string; sequence: number }[] = []
    for (const r of rows) {
      const f = r.fields as Record<string, unknown>
      const sequence = Number(f.sequence)
      if (typeof f.claimId === 'string' && Number.isSafeInteger(sequence) && sequence >= 1) page.push({
        claimId: f.claimId, sequence })
    }
    yield page
    if (rows.length < pageSize) return
    after = rows[rows.length - 1]!.id
  }
}
