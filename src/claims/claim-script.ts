import type { Keys } from '../redis/keys.js'
import type { RedisClient } from '../redis/client.js'

export type ClaimOutcome =
  | { kind: 'issued'; sequence: number; claimId: string; claimedAt: number; holdUntil: number | null }
  | { kind: 'unavailable' }
  | { kind: 'not_open'; opensAt: number }
  | { kind: 'closed'; closesAt: number }
  | { kind: 'at_limit'; count: number; sequences: number[] }
  | { kind: 'sold_out'; stock: number }
  | { kind: 'rate_limited'; retryAfterMs: number }
  | { kind: 'not_admitted'; position: number | null }

export interface ClaimResult { outcome: ClaimOutcome; replayed: boolean }

function decode(reply: unknown[]): ClaimOutcome {
  const [code, ...rest] = reply as [number, ...unknown[]]
  switch (code) {
    case 1: return { kind: 'issued', sequence: Number(rest[0]), claimId: String(rest[1]), claimedAt: Number(rest[2]),
      holdUntil: Number(rest[3] ?? 0) || null }
    case -1: return { kind: 'unavailable' }
    case -2: return { kind: 'not_open', opensAt: Number(rest[0]) }
    case -3: return { kind: 'closed', closesAt: Number(rest[0]) }
    case -4: return { kind: 'at_limit', count: Number(rest[0]), sequences: rest.slice(1).map(Number) }
    case -5: return { kind: 'sold_out', stock: Number(rest[0]) }
    case -6: return { kind: 'rate_limited', retryAfterMs: Number(rest[0]) }
    case -7: return { kind: 'not_admitted', position: rest[0] ? Number(rest[0]) : null }
    default: throw new Error(`claim script returned unknown code ${String(code)}`)
  }
}

export interface ClaimArgs {
  campaignId: string; userId: string; claimId: string; idempotencyKey?: string; idempotencyTtlS: number
  /** Requests per user and campaign per window, counted inside the script (0 or absent: no limit). */
  userMax?: number; userWindowMs?: number
}

export async function runClaim(redis: RedisClient, keys: Keys, a: ClaimArgs): Promise<ClaimResult> {
  const idem = a.idempotencyKey
    ? keys.idempotency(a.campaignId, a.userId, a.idempotencyKey)
    : keys.campaign(a.campaignId)
  const userMax = a.userMax ?? 0
  const reply = await redis.fcfsClaim(keys.campaign(a.campaignId), keys.users(a.campaignId),
    keys.streamOf(a.campaignId), idem,
    userMax > 0 ? keys.userRate(a.campaignId, a.userId) : keys.campaign(a.campaignId),
    keys.holds(a.campaignId), keys.marks(a.campaignId), keys.queueUsers(a.campaignId), keys.queueAdmits(a.campaignId),
    a.claimId, a.campaignId, a.userId, a.idempotencyTtlS, a.idempotencyKey ? '1' : '0', userMax, a.userWindowMs ?? 1000)
  if (reply[0] === 0) return { outcome: decode(JSON.parse(String(reply[1])) as unknown[]), replayed: true }
  return { outcome: decode(reply), replayed: false }
}
