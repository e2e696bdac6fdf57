/**
 * The stream entry, TypeScript side (the Lua side is stream-entry.lua next to this file; scripts include
 * it). Nothing else knows the entry types or separators.
 *
 * Partition stream: one field whose name is the entry type, value fields separated by ':'
 *   type "c" (claim issued): "<sequence>:<claimId>:<claimedAtMs>:<campaignId>:<userId>"
 *   userId comes last because it is the only free-text part (it may contain ':' and ','); the others
 *   are digits or a UUID. New entry types add a new field name; readers refuse a type they do not know
 *   (the worker dead-letters it) rather than misread it.
 *   type "h" (hold issued): "<sequence>:<claimId>:<claimedAtMs>:<holdUntilMs>:<campaignId>:<userId>"
 *   types "k" (cancelled), "f" (hold confirmed), "e" (hold expired), lifecycle events that carry the whole
 *   claim so the worker can write the row from whichever entry reaches it first:
 *     "<sequence>:<claimId>:<claimedAtMs>:<holdUntilMs or empty>:<atMs>:<campaignId>:<userId>"
 *   a cancellation may add a second field "r", its reason (free text).
 *   Old entries (before this format, possibly still in a stream when it was deployed): five fields
 *   claimId, campaignId, userId, sequence, claimedAt; the worker and reconcile read both.
 */
import { flatRecord } from './codec.js'

const CLAIM_ENTRY_TYPE = 'c'
const HOLD_ENTRY_TYPE = 'h'

/** One claim as the stream carries it. */
export interface ClaimRow {
  claimId: string
  campaignId: string
  userId: string
  sequence: number
  claimedAt: number
  /** A hold: when it expires unless confirmed (ms); absent or null for a final claim. */
  holdUntil?: number | null
}

/** The [field, value] pair of a claim's stream entry ("h" for a hold, "c" otherwise). */
export const encodeClaimEntry = (r: ClaimRow): [string, string] => (r.holdUntil
  ? [HOLD_ENTRY_TYPE, `${r.sequence}:${r.claimId}:${r.claimedAt}:${r.holdUntil}:${r.campaignId}:${r.userId}`]
  : [CLAIM_ENTRY_TYPE, `${r.sequence}:${r.claimId}:${r.claimedAt}:${r.campaignId}:${r.userId}`])

/** The raw parts of a claim entry (either format), unvalidated; null when it is not a claim entry. */
export interface RawClaim {
  claimId?: string; campaignId?: string; userId?: string; sequence?: string; claimedAt?: string; holdUntil?: string
}

/** Splits v at its first n ':' (the last part keeps any further ':'); null when v has fewer. */
function splitColons(v: string, n: number): string[] | null {
  const out: string[] = []
  let from = 0
  for (let i = 0; i < n; i++) {
    const at = v.indexOf(':', from)
    if (at < 0) return null
    out.push(v.slice(from, at))
    from = at + 1
  }
  out.push(v.slice(from))
  return out
}

/**
 * Reads the flat [field, value, ...] list of a stream entry. Compact entries are split with indexOf (no
 * regex, no intermediate object): this runs once per claim in the worker's hot loop.
 */
export function rawClaim(list: readonly string[]): RawClaim | null {
  if (list.length === 2) {
    if (list[0] === HOLD_ENTRY_TYPE) {
      const p = splitColons(list[1]!, 5)
      if (!p) return { sequence: list[1]! }
      return { sequence: p[0], claimId: p[1], claimedAt: p[2], holdUntil: p[3], campaignId: p[4], userId: p[5] }
    }
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
  const f = flatRecord(list)
  if (f.claimId === undefined && f.campaignId === undefined && f.sequence === undefined) return null
  return { claimId: f.claimId, campaignId: f.campaignId, userId: f.userId, sequence: f.sequence,
    claimedAt: f.claimedAt }
}

export type LifecycleKind = 'cancel' | 'confirm' | 'expire'
const EVENT_TYPES: Record<string, LifecycleKind> = { k: 'cancel', f: 'confirm', e: 'expire' }
const EVENT_FIELDS: Record<LifecycleKind, string> = { cancel: 'k', confirm: 'f', expire: 'e' }

/** A lifecycle event of the stream: the whole claim (unvalidated) and what happened to it, when. */
export interface RawEvent { kind: LifecycleKind; claim: RawClaim; at?: string; reason?: string }

/** A lifecycle event entry ("k", "f" or "e", optionally "r"), or null when the entry is not one. */
export function rawEvent(list: readonly string[]): RawEvent | null {
  const kind = list.length === 2 || (list.length === 4 && list[2] === 'r') ? EVENT_TYPES[list[0]!] : undefined
  if (!kind) return null
  const p = splitColons(list[1]!, 6)
  const reason = list.length === 4 ? list[3] : undefined
  if (!p) return { kind, claim: { sequence: list[1]! } }
  return { kind, at: p[4], ...(reason !== undefined ? { reason } : {}), claim: { sequence: p[0], claimId: p[1],
    claimedAt: p[2], ...(p[3] ? { holdUntil: p[3] } : {}), campaignId: p[5], userId: p[6] } }
}

/** The flat list of a lifecycle event entry (what the Lua scripts write). */
export function encodeEventEntry(kind: LifecycleKind, r: ClaimRow, at: number, reason?: string): string[] {
  const v = `${r.sequence}:${r.claimId}:${r.claimedAt}:${r.holdUntil ?? ''}:${at}:${r.campaignId}:${r.userId}`
  return reason ? [EVENT_FIELDS[kind], v, 'r', reason] : [EVENT_FIELDS[kind], v]
}

/** The campaign an entry (claim or event, any format) belongs to, or undefined. */
export const entryCampaign = (list: readonly string[] | null): string | undefined =>
  (list ? (rawClaim(list) ?? rawEvent(list)?.claim)?.campaignId : undefined)

/** The fields of an entry as a record, the compact one expanded (dead letters keep this shape). */
export function entryFields(list: readonly string[] | null): Record<string, string> {
  const out: Record<string, string> = {}
  if (!list) return out
  const raw = list.length === 2 ? rawClaim(list) : null
  if (raw && raw.claimId !== undefined) {
    for (const [k, v] of Object.entries(raw)) if (v !== undefined) out[k] = v
    return out
  }
  const ev = rawEvent(list)
  if (ev && ev.claim.claimId !== undefined) {
    for (const [k, v] of Object.entries(ev.claim)) if (v !== undefined) out[k] = v
    out.type = ev.kind
    if (ev.at !== undefined) out.at = ev.at
    if (ev.reason !== undefined) out.reason = ev.reason
    return out
  }
  return Object.assign(out, flatRecord(list))
}
