/**
 * The users record, TypeScript side (the Lua side is users-record.lua next to this file; scripts include
 * it). Nothing else knows this format.
 *
 * Users hash, field = userId:
 *   "<count>;<entry>,<entry>,..."   entry = "<sequence>:<claimId>:<claimedAtMs>[:<mark>]"
 *   count is the number of entries that count against perUserLimit, so claim.lua reads it in O(1)
 *   (a string.match anchored at the start) and never walks the entries to refuse. A mark is one lowercase
 *   letter, the claim's lifecycle state (issue 12); a cancelled or expired claim stays listed, marked, and
 *   is taken out of count by the script that marks it:
 *     (none) a final claim, holds a unit       h  a hold (expires at claimedAtMs + holdSeconds * 1000)
 *     f      a hold confirmed, holds a unit     c  cancelled (unit returned)     x  hold expired (returned)
 *   When a mark was set (c, f, x) is kept apart, in the campaign's marks hash (keys.marks), for replays.
 *   Entries are in sequence order.
 *   Old records (before the count header): "<entry>,<entry>,..."; every reader accepts them and
 *   claim.lua rewrites one in the new format when it next issues to that user. Their count is the
 *   number of entries.
 */
export interface UserClaim { sequence: number; claimId: string; claimedAt: number; mark?: string }

export type ClaimState = 'active' | 'held' | 'confirmed' | 'cancelled' | 'expired'
const STATES: Record<string, ClaimState> = { h: 'held', f: 'confirmed', c: 'cancelled', x: 'expired' }

/** The mark each state is stored as (none for a final claim). */
export const MARK_OF: Record<ClaimState, string> = { active: '', held: 'h', confirmed: 'f', cancelled: 'c',
  expired: 'x' }

/** A users-record entry's lifecycle state, from its mark (none: a final claim, 'active'). */
export const claimState = (mark: string | undefined): ClaimState => (mark ? STATES[mark] ?? 'active' : 'active')

/** A claim holds a unit unless cancelled or expired. */
export const holdsUnit = (mark: string | undefined): boolean => mark !== MARK_OF.cancelled && mark !== MARK_OF.expired

/** A hold not yet confirmed, cancelled or expired. */
export const isOpenHold = (mark: string | undefined): boolean => mark === MARK_OF.held

const ENTRY = /^(\d+):([^:,]+):(\d+)(?::([a-z]))?$/

/** Parses a users record (either format); parts that match neither layout are returned apart. */
export function parseUserRecord(record: string | null | undefined):
  { count: number; claims: UserClaim[]; malformed: string[] } {
  const claims: UserClaim[] = []
  const malformed: string[] = []
  if (!record) return { count: 0, claims, malformed }
  const semi = record.indexOf(';')
  const header = semi >= 0 ? record.slice(0, semi) : ''
  const hasHeader = semi >= 0 && /^\d+$/.test(header)
  const body = hasHeader ? record.slice(semi + 1) : record
  for (const part of body.split(',')) {
    const m = ENTRY.exec(part)
    if (m) claims.push(m[4] ? { sequence: Number(m[1]), claimId: m[2]!, claimedAt: Number(m[3]),
      mark: m[4] } : { sequence: Number(m[1]), claimId: m[2]!, claimedAt: Number(m[3]) })
    else if (part !== '') malformed.push(part)
  }
  return { count: hasHeader ? Number(header) : claims.length, claims, malformed }
}

/** One entry of a users record, "seq:claimId:claimedAtMs[:mark]". */
export const userEntry = (c: UserClaim): string =>
  `${c.sequence}:${c.claimId}:${c.claimedAt}${c.mark ? `:${c.mark}` : ''}`

/** A users record in the current format; count = the entries that hold a unit. */
export function encodeUserRecord(claims: UserClaim[]): string {
  let count = 0
  for (const c of claims) if (holdsUnit(c.mark)) count++
  return `${count};${claims.map(userEntry).join(',')}`
}
