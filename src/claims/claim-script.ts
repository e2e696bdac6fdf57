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
  | { kind: 'too_late' }
  | { kind: 'recovering' }

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
    case -8: return { kind: 'too_late' }
    case -9: return { kind: 'recovering' }
    default: throw new Error(`claim script returned unknown code ${String(code)}`)
  }
}

/**
 * How far Redis's clock may run behind the API's before a late script could still issue after its request
 * was answered 503: the script refuses to start later than the request's arrival plus
 * REDIS_COMMAND_TIMEOUT_MS minus this margin (Redis TIME), while the API answers 503 only at arrival plus
 * REDIS_COMMAND_TIMEOUT_MS. NTP keeps hosts within a few ms; 200 ms also covers the reply's way back.
 * A timeout under 400 ms keeps half of itself for the script.
 */
export const CLOCK_SKEW_MARGIN_MS = 200

/** The epoch ms after which a claim's script writes nothing (its request is answered 503 by then). */
export function claimDeadline(arrivedAtMs: number, timeoutMs: number): number {
  return arrivedAtMs + timeoutMs - Math.min(CLOCK_SKEW_MARGIN_MS, Math.floor(timeoutMs / 2))
}

export interface ClaimArgs {
  campaignId: string; userId: string; claimId: string; idempotencyKey?: string; idempotencyTtlS: number
  /** Requests per user and campaign per window, counted inside the script (0 or absent: no limit). */
  userMax?: number; userWindowMs?: number
  /** claimDeadline(): past it (Redis TIME) the script answers too_late and writes nothing (0: no deadline). */
  deadlineMs?: number
  /** Refuse a fenced campaign (answers recovering): on while automatic recovery runs (src/recovery/). */
  fence?: boolean
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
    a.claimId, a.campaignId, a.userId, a.idempotencyTtlS, a.idempotencyKey ? '1' : '0', userMax, a.userWindowMs ?? 1000,
    a.deadlineMs ?? 0, a.fence ? '1' : '0')
  if (reply[0] === 0) return { outcome: decode(JSON.parse(String(reply[1])) as unknown[]), replayed: true }
  return { outcome: decode(reply), replayed: false }
}
