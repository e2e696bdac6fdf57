/**
 * The two formats Redis holds a claim in, read and written in TypeScript here and in Lua by claim.lua,
 * restore-users.lua and reenqueue.lua (which repeat the layouts in their headers).
 *
 * Users record (users hash, field = userId):
 *   "<count>;<entry>,<entry>,..."   entry = "<sequence>:<claimId>:<claimedAtMs>[:<mark>]"
 *   count is the number of entries that count against perUserLimit, so claim.lua reads it in O(1)
 *   (a string.match anchored at the start) and never walks the entries to refuse. An entry without a
 *   mark is held; a mark is one lowercase letter (kept for claim lifecycle: a cancelled claim stays
 *   listed, marked, and is taken out of count by whoever marks it). Entries are in sequence order.
 *   Old records (before the count header): "<entry>,<entry>,..."; every reader accepts them and
 *   claim.lua rewrites one in the new format when it next issues to that user. Their count is the
 *   number of entries.
 *
 * Stream entry (partition stream): one field whose name is the entry type, value fields separated by ':'
 *   type "c" (claim issued): "<sequence>:<claimId>:<claimedAtMs>:<campaignId>:<userId>"
 *   userId comes last because it is the only free-text part (it may contain ':' and ','); the others
 *   are digits or a UUID. New entry types add a new field name; readers refuse a type they do not know
 *   (the worker dead-letters it) rather than misread it.
 *   Old entries (before this format, possibly still in a stream when it was deployed): five fields
 *   claimId, campaignId, userId, sequence, claimedAt; the worker and reconcile read both.
 */

export interface UserClaim { sequence: number; claimId: string; claimedAt: number; mark?: string }

const CLAIM_ENTRY_TYPE = 'c'

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

/** A users record in the current format; count = the unmarked entries. */
export function encodeUserRecord(claims: UserClaim[]): string {
  let count = 0
  for (const c of claims) if (!c.mark) count++
  return `${count};${claims.map(userEntry).join(',')}`
}

/** One claim as the stream carries it. */
export interface ClaimRow {
  claimId: string
  campaignId: string
  userId: string
  sequence: number
  claimedAt: number
}

/** The [field, value] pair of a claim's stream entry. */
export const encodeClaimEntry = (r: ClaimRow): [string, string] =>
  [CLAIM_ENTRY_TYPE, `${r.sequence}:${r.claimId}:${r.claimedAt}:${r.campaignId}:${r.userId}`]

/** The raw parts of a claim entry (either format), unvalidated; null when it is not a claim entry. */
export interface RawClaim {
  claimId?: string; campaignId?: string; userId?: string; sequence?: string; claimedAt?: string
}

/**
 * Reads the flat [field, value, ...] list of a stream entry. Compact entries are split with indexOf (no
 * regex, no intermediate object): this runs once per claim in the worker's hot loop.
 */
export function rawClaim(list: readonly string[]): RawClaim | null {
  if (list.length === 2) {
    if (list[0] !== CLAIM_ENTRY_TYPE) return null
    const v = list[1]!
    const a = v.indexOf(':')
    const b = v.indexOf(':', a + 1)
    const c = v.indexOf(':', b + 1)
    const d = v.indexOf(':', c + 1)
    if (a < 0 || b < 0 || c < 0 || d < 0) return { sequence: v }
    return { sequence: v.slice(0, a), claimId: v.slice(a + 1, b), claimedAt: v.slice(b + 1, c),
      campaignId: v.slice(c + 1, d), userId: v.slice(d + 1) }
  }
  const f: Record<string, string> = {}
  for (let i = 0; i + 1 < list.length; i += 2) f[list[i]!] = list[i + 1]!
  if (f.claimId === undefined && f.campaignId === undefined && f.sequence === undefined) return null
  return { claimId: f.claimId, campaignId: f.campaignId, userId: f.userId, sequence: f.sequence,
    claimedAt: f.claimedAt }
}

/** The fields of an entry as a record, the compact one expanded (dead letters keep this shape). */
export function entryFields(list: readonly string[] | null): Record<string, string> {
  const out: Record<string, string> = {}
  if (!list) return out
  const raw = list.length === 2 ? rawClaim(list) : null
  if (raw && raw.claimId !== undefined) {
    for (const [k, v] of Object.entries(raw)) if (v !== undefined) out[k] = v
    return out
  }
  for (let i = 0; i + 1 < list.length; i += 2) out[list[i]!] = list[i + 1]!
  return out
}
