/**
 * The waiting room's Redis side (issue 21): typed calls of line.lua, advance.lua, draw.lua and state.lua,
 * every key in the campaign's slot (keys.ts). docs/queue.md describes the layout.
 */
import type { Keys } from '../redis/keys.js'
import type { RedisClient } from '../redis/client.js'

type UserQueueState = 'pre_queue' | 'waiting' | 'admitted' | 'claimed' | 'expired' | 'sold_out'

export type LineOutcome =
  | { kind: 'in_line'; joined: boolean; ticket: string; position: number | null; state: UserQueueState
    admittedUntil: number | null; servingUpTo: number; admitPerSecond: number }
  | { kind: 'unavailable' } | { kind: 'no_queue' } | { kind: 'closed'; closedAt: number } | { kind: 'not_in_line' }

/** Joins (mode 'join') or reads the user's place (mode 'me'): one script call. */
export async function line(redis: RedisClient, keys: Keys, id: string, userId: string, mode: 'join' | 'me',
  ticket: string): Promise<LineOutcome> {
  const r = await redis.fcfsQueueLine(keys.campaign(id), keys.queueUsers(id), keys.queuePositions(id),
    keys.queueAdmits(id), keys.users(id), keys.holds(id), mode, userId, ticket)
  const code = Number(r[0])
  if (code === -1) return { kind: 'unavailable' }
  if (code === -2) return { kind: 'no_queue' }
  if (code === -3) return { kind: 'closed', closedAt: Number(r[1]) }
  if (code === -4) return { kind: 'not_in_line' }
  return { kind: 'in_line', joined: code === 1, ticket: String(r[1]), position: r[2] ? Number(r[2]) : null,
    state: String(r[3]) as UserQueueState, admittedUntil: r[4] ? Number(r[4]) : null,
    servingUpTo: Number(r[5] ?? 0), admitPerSecond: Number(r[6] ?? 1) }
}

/** A waiting room's raw figures, as state.lua reads them (all at one instant). */
export interface QueueFigures {
  stock: number; issued: number; returned: number; opensAt: number | null; closesAt: number | null
  endedAt: number | null; order: 'fifo' | 'shuffle' | null; admitPerSecond: number; admitSeconds: number
  length: number; preQueue: number; servingUpTo: number; drawnAt: number | null; admitted: number
  expired: number; reoffered: number; soldOutAt: number | null; seedHash: string; seed: string | null
  holdsOpen: number; pendingAdmits: number; now: number
}

export type PublicQueueState = 'pre_queue' | 'open' | 'sold_out' | 'closed'

/** The public state: sold out once no unit is left and none can come back from an open hold. */
export function publicState(f: QueueFigures): PublicQueueState {
  if (f.endedAt !== null || (f.closesAt !== null && f.now >= f.closesAt)) return 'closed'
  if (f.opensAt !== null && f.now < f.opensAt) return 'pre_queue'
  if (f.stock - (f.issued - f.returned) <= 0 && f.holdsOpen === 0) return 'sold_out'
  return 'open'
}

/** state.lua's answer, in order. */
const STATE_FIELDS = ['stock', 'issued', 'returned', 'opensAt', 'closesAt', 'ended', 'qOrder', 'qRate', 'qAdmitS',
  'qLength', 'qPre', 'qServing', 'qDrawn', 'qAdmitted', 'qExpired', 'qReoffered', 'qSoldOutAt', 'qSeedHash', 'seed',
  'holdsOpen', 'pendingAdmits', 'now'] as const

/** state.lua: null when the campaign has no live state. */
export async function readFigures(redis: RedisClient, keys: Keys, id: string): Promise<QueueFigures | null> {
  const flat = await redis.fcfsQueueState(keys.campaign(id), keys.holds(id), keys.queueAdmits(id))
  if (flat.length === 0) return null
  const f = Object.fromEntries(STATE_FIELDS.map((k, i) => [k, String(flat[i] ?? '')])) as Record<string, string>
  const n = (k: string) => Number(f[k] || 0)
  const ms = (k: string) => (f[k] ? Number(f[k]) : null)
  return {
    stock: n('stock'), issued: n('issued'), returned: n('returned'), opensAt: ms('opensAt'), closesAt: ms('closesAt'),
    endedAt: ms('ended'), order: f.qOrder === 'fifo' || f.qOrder === 'shuffle' ? f.qOrder : null,
    admitPerSecond: n('qRate'), admitSeconds: n('qAdmitS'), length: n('qLength'), preQueue: n('qPre'),
    servingUpTo: n('qServing'), drawnAt: ms('qDrawn'), admitted: n('qAdmitted'), expired: n('qExpired'),
    reoffered: n('qReoffered'), soldOutAt: ms('qSoldOutAt'), seedHash: f.qSeedHash ?? '', seed: f.seed || null,
    holdsOpen: n('holdsOpen'), pendingAdmits: n('pendingAdmits'), now: n('now'),
  }
}

/** advance.lua's answer. */
export type AdvanceResult = { code: number; admitted: number; expired: number; servingUpTo: number }

export async function advance(redis: RedisClient, keys: Keys, id: string, max: number): Promise<AdvanceResult> {
  const [code, admitted, expired, servingUpTo] = await redis.fcfsQueueAdvance(keys.campaign(id), keys.users(id),
    keys.streamOf(id), keys.holds(id), keys.marks(id), keys.queueAdmits(id), keys.queuePositions(id),
    keys.queueLog(id), id, max)
  return { code: code!, admitted: admitted!, expired: expired!, servingUpTo: servingUpTo! }
}

/** One entry of the admission log: an admission (with its join time) or an admission that ran out. */
export type LogEntry = { kind: 'admitted'; position: number; at: number; joinedAt: number | null }
  | { kind: 'expired'; position: number; at: number }

export function parseLog(entries: string[]): LogEntry[] {
  return entries.map((e) => {
    const [k, p, at, joined] = e.split(':')
    return k === 'a'
      ? { kind: 'admitted' as const, position: Number(p), at: Number(at), joinedAt: joined ? Number(joined) : null }
      : { kind: 'expired' as const, position: Number(p), at: Number(at) }
  })
}
