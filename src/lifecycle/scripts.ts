import type { RedisClient } from '../redis/client.js'
import type { Keys } from '../redis/keys.js'

/** The five keys every lifecycle script of one campaign works on; one hash tag, one slot. */
const slotKeys = (keys: Keys, id: string) => [keys.campaign(id), keys.users(id), keys.streamOf(id),
  keys.holds(id), keys.marks(id)] as const

export type CancelOutcome =
  | { kind: 'cancelled'; replayed: boolean; sequence: number; claimedAt: number; cancelledAt: number }
  | { kind: 'unavailable' } | { kind: 'not_found' } | { kind: 'ended' } | { kind: 'hold_expired' }
  | { kind: 'recovering' }

export async function runCancel(redis: RedisClient, keys: Keys,
  a: { campaignId: string; userId: string; claimId: string; reason?: string; fence?: boolean },
): Promise<CancelOutcome> {
  const r = await redis.fcfsCancel(...slotKeys(keys, a.campaignId), a.campaignId, a.userId, a.claimId, a.reason ?? '',
    a.fence ? '1' : '0')
  switch (r[0]) {
    case 1: case 0: return { kind: 'cancelled', replayed: r[0] === 0, sequence: r[1]!, claimedAt: r[2]!,
      cancelledAt: r[3]! }
    case -1: return { kind: 'unavailable' }
    case -2: return { kind: 'not_found' }
    case -3: return { kind: 'ended' }
    case -4: return { kind: 'hold_expired' }
    case -9: return { kind: 'recovering' }
    default: throw new Error(`cancel script returned unknown code ${String(r[0])}`)
  }
}

export type ConfirmOutcome =
  | { kind: 'confirmed'; replayed: boolean; sequence: number; claimedAt: number; confirmedAt: number }
  | { kind: 'unavailable' } | { kind: 'not_found' } | { kind: 'hold_expired' } | { kind: 'cancelled' } | {
    kind: 'not_a_hold' } | { kind: 'recovering' }

export async function runConfirm(redis: RedisClient, keys: Keys,
  a: { campaignId: string; userId: string; claimId: string; fence?: boolean }): Promise<ConfirmOutcome> {
  const r = await redis.fcfsConfirm(...slotKeys(keys, a.campaignId), a.campaignId, a.userId, a.claimId,
    a.fence ? '1' : '0')
  switch (r[0]) {
    case 1: case 0: return { kind: 'confirmed', replayed: r[0] === 0, sequence: r[1]!, claimedAt: r[2]!,
      confirmedAt: r[3]! }
    case -1: return { kind: 'unavailable' }
    case -2: return { kind: 'not_found' }
    case -4: return { kind: 'hold_expired' }
    case -5: return { kind: 'cancelled' }
    case -6: return { kind: 'not_a_hold' }
    case -9: return { kind: 'recovering' }
    default: throw new Error(`confirm script returned unknown code ${String(r[0])}`)
  }
}

/** Expires up to max due holds of one campaign; null when it has no live state. */
export async function sweepHolds(redis: RedisClient, keys: Keys, campaignId: string,
  max = 500): Promise<{ expired: number; open: number } | null> {
  const [expired, open] = await redis.fcfsSweepHolds(...slotKeys(keys, campaignId), campaignId, max)
  return expired === -1 ? null : { expired: expired!, open: open! }
}

export type EndOutcome =
  | { kind: 'ended'; now: boolean; issued: number; returned: number; endedAt: number }
  | { kind: 'unavailable' } | { kind: 'holds_open'; holds: number } | { kind: 'running' }

export async function endCampaign(redis: RedisClient, keys: Keys, campaignId: string): Promise<EndOutcome> {
  const r = await redis.fcfsEndCampaign(keys.campaign(campaignId), keys.holds(campaignId), 'end')
  switch (r[0]) {
    case 1: case 2: return { kind: 'ended', now: r[0] === 1, issued: r[1]!, returned: r[2]!, endedAt: r[3]! }
    case -1: return { kind: 'unavailable' }
    case -2: return { kind: 'holds_open', holds: r[1]! }
    case -3: return { kind: 'running' }
    default: throw new Error(`end-campaign script returned unknown code ${String(r[0])}`)
  }
}

export async function reopenCampaign(redis: RedisClient, keys: Keys, campaignId: string): Promise<void> {
  await redis.fcfsEndCampaign(keys.campaign(campaignId), keys.holds(campaignId), 'reopen')
}
