import { entryFields, rawClaim, type ClaimRow, type RawClaim } from '../redis/codec.js'

export type { ClaimRow } from '../redis/codec.js'

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
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const CAMPAIGN_ID = /^[1-9][0-9]{0,17}$/
const INT4_MAX = 2_147_483_647

/** ioredis replies [id, [field, value, ...]]; a deleted entry still pending comes back with null fields. */
export function toEntry(stream: string, raw: [string, string[] | null], deliveries: number): StreamEntry {
  return { stream, id: raw[0], raw: raw[1], deliveries }
}

/** The entry's fields by name (compact entries expanded): what a dead letter records. */
export const fieldsOf = (e: StreamEntry): Record<string, string> => entryFields(e.raw)

/**
 * Validates everything Postgres would otherwise reject with a data error, so that a malformed entry is
 * dead-lettered at once instead of failing its whole batch. Returns the row or the reason it is unusable.
 */
export function parseClaim(f: RawClaim | null): ClaimRow | string {
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
  return { claimId: claimId.toLowerCase(), campaignId, userId, sequence, claimedAt }
}

/** A stream entry (compact or the old five fields) as a row, or why it is unusable. */
export const parseEntry = (e: StreamEntry): ClaimRow | string =>
  (e.raw ? parseClaim(rawClaim(e.raw)) : 'entry deleted while pending')
