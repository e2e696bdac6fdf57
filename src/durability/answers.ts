/**
 * What the user-facing write routes (claim, cancel, confirm, revoke) do with durability: refuse before the
 * script when the campaign's master cannot confirm (nothing written), and after it answer only what the
 * replicas hold. Unconfirmed is never undone: an undo could itself reach the replica while the claim did not
 * (or the reverse), so the only true answer is 503 NOT_DURABLE, outcome unknown (docs/api.md).
 */
import { AppError, ErrorCode } from '../errors.js'
import type { Keys } from '../redis/keys.js'
import type { Durability, Ticket } from './durability.js'

export interface DurableAnswers {
  /** Before the write: 503 BACKEND_UNAVAILABLE (nothing written) when the master cannot confirm now. */
  before(campaignId: string): Ticket | null
  /** After the write answered `what`: returns once it is on the replicas, else throws 503 NOT_DURABLE. */
  after(ticket: Ticket | null, what: { campaignId: string; claimId?: string;
    action: 'claim' | 'cancel' | 'confirm' }): Promise<void>
}

export function durableAnswers(durability: Durability, keys: Keys, timeoutMs: number): DurableAnswers {
  if (!durability.enabled) return { before: () => null, after: async () => {} }
  return {
    before(campaignId) {
      const p = keys.partitionOf(campaignId)
      const why = durability.refusal(p)
      if (why) {
        throw new AppError(503, ErrorCode.BACKEND_UNAVAILABLE, `claims refused, nothing was written: ${why}`)
      }
      return durability.ticket(p)
    },
    async after(ticket, what) {
      if (await durability.confirm(ticket)) return
      const mine = `GET /v1/campaigns/${what.campaignId}/claims/me`
      const how = what.action === 'claim'
        ? `send the same request with the same Idempotency-Key (it replays the first answer once durable) or ${mine}`
        : `repeat the request (it replays the answer once it is durable) or ${mine}`
      throw new AppError(503, ErrorCode.NOT_DURABLE,
        `outcome unknown: the ${what.action} ran on Redis but was not confirmed on the replicas within ` +
        `${timeoutMs} ms, so it may be kept or lost; to learn it, ${how}`,
        what.claimId ? { claimId: what.claimId } : {})
    },
  }
}
