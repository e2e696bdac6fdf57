import { readFileSync } from 'node:fs'
import type { Result } from 'ioredis'
import type { Keys } from '../redis/keys.js'
import type { RedisClient } from '../redis/client.js'

export const CLAIM_LUA = readFileSync(new URL('./claim.lua', import.meta.url), 'utf8')

declare module 'ioredis' {
  interface RedisCommander<Context> {
    fcfsClaim(campaign: string, users: string, stream: string, idem: string,
      claimId: string, campaignId: string, userId: string, idemTtlS: number,
      useIdem: '0' | '1'): Result<unknown[], Context>
  }
}

/** Registers claim.lua; ioredis sends EVALSHA and falls back to EVAL on NOSCRIPT (e.g. after SCRIPT FLUSH). */
export function defineClaimScript(redis: RedisClient): void {
  redis.defineCommand('fcfsClaim', { numberOfKeys: 4, lua: CLAIM_LUA })
}

export type ClaimOutcome =
  | { kind: 'issued'; sequence: number; claimId: string; claimedAt: number }
  | { kind: 'unavailable' }
  | { kind: 'not_open'; opensAt: number }
  | { kind: 'closed'; closesAt: number }
  | { kind: 'at_limit'; sequences: number[] }
  | { kind: 'sold_out'; stock: number }

export interface ClaimResult { outcome: ClaimOutcome; replayed: boolean }

function decode(reply: unknown[]): ClaimOutcome {
  const [code, ...rest] = reply as [number, ...unknown[]]
  switch (code) {
    case 1: return { kind: 'issued', sequence: Number(rest[0]), claimId: String(rest[1]), claimedAt: Number(rest[2]) }
    case -1: return { kind: 'unavailable' }
    case -2: return { kind: 'not_open', opensAt: Number(rest[0]) }
    case -3: return { kind: 'closed', closesAt: Number(rest[0]) }
    case -4: return { kind: 'at_limit', sequences: rest.map(Number) }
    case -5: return { kind: 'sold_out', stock: Number(rest[0]) }
    default: throw new Error(`claim script returned unknown code ${String(code)}`)
  }
}

export interface ClaimArgs {
  campaignId: string
  userId: string
  claimId: string
  idempotencyKey?: string
  idempotencyTtlS: number
}

export async function runClaim(redis: RedisClient, keys: Keys, a: ClaimArgs): Promise<ClaimResult> {
  const idem = a.idempotencyKey
    ? keys.idempotency(a.campaignId, a.userId, a.idempotencyKey)
    : keys.campaign(a.campaignId)
  const reply = await redis.fcfsClaim(keys.campaign(a.campaignId), keys.users(a.campaignId),
    keys.streamOf(a.campaignId), idem,
    a.claimId, a.campaignId, a.userId, a.idempotencyTtlS, a.idempotencyKey ? '1' : '0')
  if (reply[0] === 0) return { outcome: decode(JSON.parse(String(reply[1])) as unknown[]), replayed: true }
  return { outcome: decode(reply), replayed: false }
}

/** Parses a users-hash record "seq:claimId:claimedAtMs,..." into the user's claims. */
export function parseUserRecord(record: string | null): { sequence: number; claimId: string; claimedAt: number }[] {
  if (!record) return []
  return record.split(',').map((part) => {
    const [seq, claimId, at] = part.split(':')
    return { sequence: Number(seq), claimId: claimId!, claimedAt: Number(at) }
  })
}
