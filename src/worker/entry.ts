import { CAMPAIGN_ID } from '../campaigns/schemas.js'
import { entryFields, rawClaim, rawEvent, type ClaimRow, type LifecycleKind, type RawClaim }
  from '../redis/stream-entry.js'

import type { Ticket } from '../durability/durability.js'

export type { ClaimRow } from '../redis/stream-entry.js'

/**
 * A stream entry as the worker sees it: where it came from, its raw [field, value, ...] list (null for an
 * entry deleted while pending), how often it was delivered. The list is decoded once, straight into a
 * row; the field map is only built for a dead letter.
 */
export interface StreamEntry {
  stream: string
  id: string
  raw: string[] | null
  deliveries: number
  /** CLAIM_DURABILITY=replica: the master the entry was read from, taken before the read (src/durability/). */
  ticket?: Ticket | null
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const INT4_MAX = 2_147_483_647

/** ioredis replies [id, [field, value, ...]]; a deleted entry still pending comes back with null fields. */
export function toEntry(stream: string, raw: [string, string[] | null], deliveries: number,
  ticket?: Ticket | null): StreamEntry {
  return ticket === undefined ? { stream, id: raw[0], raw: raw[1], deliveries }
    : { stream, id: raw[0], raw: raw[1], deliveries, ticket }
}

/** The entry's fields by name (compact entries expanded): what a dead letter records. */
export const fieldsOf = (e: StreamEntry): Record<string, string> => entryFields(e.raw)

/**
 * Validates everything Postgres would otherwise reject with a data error, so that a malformed entry is
 * dead-lettered at once instead of failing its whole batch. Returns the row or the reason it is unusable.
 */
function parseClaim(f: RawClaim | null): ClaimRow | string {
  if (!f) return 'not a claim entry'
  const { claimId, campaignId, userId } = f
  if (!claimId || !UUID.test(claimId)) return `bad claimId ${JSON.stringify(claimId ?? null)}`
  if (!campaignId || !CAMPAIGN_ID.test(campaignId)) return `bad campaignId ${JSON.stringify(campaignId ?? null)}`
  if (!userId || userId.length > 1024 || userId.includes('\u0000')) {
    return `bad userId ${JSON.stringify(userId?.slice(0, 64) ?? null)}`
  }
  const sequence = Number(f.sequence)
  if (!Number.isInteger(sequence) || sequence < 1 || sequence > INT4_MAX) {
    return `bad sequence ${JSON.stringify(f.sequence ?? null)}`
  }
  const claimedAt = Number(f.claimedAt)
  if (!Number.isSafeInteger(claimedAt) || claimedAt < 0) return `bad claimedAt ${JSON.stringify(f.claimedAt ?? null)}`
  const row: ClaimRow = { claimId: claimId.toLowerCase(), campaignId, userId, sequence, claimedAt }
  if (f.holdUntil !== undefined) {
    const holdUntil = Number(f.holdUntil)
    if (!Number.isSafeInteger(holdUntil) || holdUntil < 0) return `bad holdUntil ${JSON.stringify(f.holdUntil)}`
    row.holdUntil = holdUntil
  }
  return row
}

/** A dead letter's expanded fields (fieldsOf) as a row, with its event if it was one (retry-failed). */
export function parseFields(f: Record<string, string>): ClaimRow | EventRow | string {
  const row = parseClaim(f)
  if (typeof row === 'string' || f.type === undefined) return row
  if (f.type !== 'cancel' && f.type !== 'confirm' && f.type !== 'expire') return `bad type ${JSON.stringify(f.type)}`
  const at = Number(f.at)
  if (!Number.isSafeInteger(at) || at < 0) return `bad at ${JSON.stringify(f.at ?? null)}`
  return { ...row, event: { kind: f.type, at, reason: f.reason ? f.reason.slice(0, 500) : null } }
}

/** What a lifecycle event (issue 12) says happened to its claim, and when. */
export interface LifecycleEvent { kind: LifecycleKind; at: number; reason: string | null }
/** A lifecycle event's claim row, with the event. */
export type EventRow = ClaimRow & { event: LifecycleEvent }

/**
 * A stream entry (compact or the old five fields) as a row, or why it is unusable. Lifecycle events carry
 * the whole claim besides their own parts, so the worker can write the row from whichever arrives first.
 */
export function parseEntry(e: StreamEntry): ClaimRow | EventRow | string {
  if (!e.raw) return 'entry deleted while pending'
  const claim = rawClaim(e.raw)
  if (claim) return parseClaim(claim)
  const ev = rawEvent(e.raw)
  if (!ev) return 'not a claim entry'
  const row = parseClaim(ev.claim)
  if (typeof row === 'string') return row
  const at = Number(ev.at)
  if (!Number.isSafeInteger(at) || at < 0) return `bad at ${JSON.stringify(ev.at ?? null)}`
  const reason = ev.reason ? ev.reason.slice(0, 500).replaceAll('\u0000', '') : null
  return { ...row, event: { kind: ev.kind, at, reason } }
}
