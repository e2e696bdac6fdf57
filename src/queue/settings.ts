import { createHash, randomBytes } from 'node:crypto'
import { Type } from 'typebox'

/** The `queue` option of POST /admin/campaigns (issue 21). */
export const QueueOptionSchema = Type.Object({
  order: Type.Union([Type.Literal('fifo'), Type.Literal('shuffle')], {
    description: 'shuffle: the pre-queue (joined before opensAt) is ordered by the verifiable draw; fifo: ' +
      'arrival order throughout' }),
  admitPerSecond: Type.Integer({ minimum: 1, maximum: 100_000, description: 'admissions per second at most' }),
  admitSeconds: Type.Integer({ minimum: 1, maximum: 86_400,
    description: 'an admitted user has this long to claim; then the next user is admitted instead' }),
}, { additionalProperties: false, description: 'set: a waiting room in front of the campaign; only ' +
  'admitted users can claim (docs/queue.md)' })

export const QueueSettingsSchema = Type.Union([Type.Object({
  ...QueueOptionSchema.properties,
  seedHash: Type.String({ description: 'hex SHA-256 of the draw seed (the seed is revealed at opensAt)' }),
}), Type.Null()])

export interface QueueColumns {
  queueOrder?: string | null; queueAdmitPerSecond?: number | null; queueAdmitSeconds?: number | null
  queueSeed?: string | null
}

export const sha256Hex = (s: string): string => createHash('sha256').update(s).digest('hex')

/** A new campaign's queue columns: a fresh random seed (32 bytes, hex), kept secret until opensAt. */
export function queueColumns(q: { order: 'fifo' | 'shuffle'; admitPerSecond: number; admitSeconds: number } |
  undefined): Required<QueueColumns> {
  if (!q) return { queueOrder: null, queueAdmitPerSecond: null, queueAdmitSeconds: null, queueSeed: null }
  return { queueOrder: q.order, queueAdmitPerSecond: q.admitPerSecond, queueAdmitSeconds: q.admitSeconds,
    queueSeed: randomBytes(32).toString('hex') }
}

/** The queue part of a campaign's admin view (never the seed). */
export function queueView(c: QueueColumns) {
  if (!c.queueOrder || !c.queueSeed) return null
  return { order: c.queueOrder as 'fifo' | 'shuffle', admitPerSecond: c.queueAdmitPerSecond ?? 0,
    admitSeconds: c.queueAdmitSeconds ?? 0, seedHash: sha256Hex(c.queueSeed) }
}

/** mirror.lua's ARGV[8..12]: order, admitPerSecond, admitSeconds, seed, seedHash ('' each without a queue). */
export function queueMirrorArgs(c: QueueColumns): string[] {
  if (!c.queueOrder || !c.queueSeed) return ['', '', '', '', '']
  return [c.queueOrder, String(c.queueAdmitPerSecond), String(c.queueAdmitSeconds), c.queueSeed,
    sha256Hex(c.queueSeed)]
}
