import type { ClaimRowDb } from '../campaigns/repository.js'
import type { ClaimState } from '../redis/users-record.js'

/** A claims row's lifecycle state, as the users record would say it. */
export function rowState(r: Pick<ClaimRowDb,
  'cancelledAt' | 'expiredAt' | 'confirmedAt' | 'holdExpiresAt'>): ClaimState {
  if (r.cancelledAt) return 'cancelled'
  if (r.expiredAt) return 'expired'
  if (r.confirmedAt) return 'confirmed'
  if (r.holdExpiresAt) return 'held'
  return 'active'
}
