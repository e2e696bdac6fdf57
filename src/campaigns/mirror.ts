import type { Keys } from '../redis/keys.js'
import type { RedisClient } from '../redis/client.js'
import { queueMirrorArgs } from '../queue/settings.js'

export interface CampaignSettings {
  id: bigint | string
  name: string
  stock: number
  perUserLimit: number
  opensAt: Date | null
  closesAt: Date | null
  holdSeconds?: number | null
  queueOrder?: string | null
  queueAdmitPerSecond?: number | null
  queueAdmitSeconds?: number | null
  queueSeed?: string | null
}

/** Writes a campaign's settings into Redis; null when mode is 'update' and the live state is gone. */
export async function mirrorCampaign(redis: RedisClient, keys: Keys, c: CampaignSettings, mode: 'create' | 'update'):
  Promise<{ stock: number; issued: number; returned: number } | null> {
  const ms = (d: Date | null) => (d ? String(d.getTime()) : '')
  const [stock, issued, returned] = await redis.fcfsMirror(keys.campaign(c.id), mode, c.name, c.stock, c.perUserLimit,
    ms(c.opensAt), ms(c.closesAt),
    c.holdSeconds ? String(c.holdSeconds) : '', ...queueMirrorArgs(c))
  if (stock === -1) return null
  return { stock: stock!, issued: issued!, returned: returned ?? 0 }
}

export interface LiveState {
  name: string; stock: number; perUserLimit: number; opensAt: number | null; closesAt: number | null; issued: number
  /** Units given back (cancellations, expired holds): issued again under new sequences. */
  returned: number
  holdSeconds: number | null
  /** Set once an archive has ended the campaign (ms). */
  endedAt: number | null
}

/** Units held by claims: sequences handed out minus units given back. */
const activeOf = (live: LiveState): number => live.issued - live.returned
export const remainingOf = (live: LiveState): number => Math.max(0, live.stock - activeOf(live))

export async function readLiveState(redis: RedisClient, keys: Keys, id: string): Promise<LiveState | null> {
  const [name, stock, limit, opensAt, closesAt, issued, returned, holdSeconds, ended] = await redis.hmget(
    keys.campaign(id), 'name', 'stock', 'perUserLimit', 'opensAt', 'closesAt', 'issued', 'returned', 'holdSeconds',
    'ended')
  if (stock == null || issued == null || limit == null) return null
  const ms = (v: string | null | undefined) => (v ? Number(v) : null)
  return {
    name: name ?? '', stock: Number(stock), perUserLimit: Number(limit), opensAt: ms(opensAt), closesAt: ms(closesAt),
    issued: Number(issued),
    returned: Number(returned ?? 0), holdSeconds: ms(holdSeconds), endedAt: ms(ended),
  }
}
