/** A stream entry as the worker sees it: where it came from, its raw fields, how often it was delivered. */
export interface StreamEntry {
  stream: string
  id: string
  fields: Record<string, string>
  deliveries: number
}

/** One claims row, as claim.lua wrote it into the stream. */
export interface ClaimRow {
  claimId: string
  campaignId: string
  userId: string
  sequence: number
  claimedAt: number
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const CAMPAIGN_ID = /^[1-9][0-9]{0,17}$/
const INT4_MAX = 2_147_483_647

/** ioredis replies [id, [field, value, ...]]; a deleted entry still pending comes back with null fields. */
export function toEntry(stream: string, raw: [string, string[] | null], deliveries: number): StreamEntry {
  const [id, list] = raw
  const fields: Record<string, string> = {}
  if (list) for (let i = 0; i + 1 < list.length; i += 2) fields[list[i]!] = list[i + 1]!
  return { stream, id, fields, deliveries }
}

/**
 * Validates everything Postgres would otherwise reject with a data error, so that a malformed entry is
 * dead-lettered at once instead of failing its whole batch. Returns the row or the reason it is unusable.
 */
export function parseClaim(f: Record<string, string>): ClaimRow | string {
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
