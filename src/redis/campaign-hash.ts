/**
 * The campaign hash, TypeScript side (the Lua side is campaign-hash.lua next to this file; scripts include
 * it). The one reader of its fields, plain or in a pipeline, and the one place `remaining` and `state` are
 * derived from them.
 *
 * Fields: name, stock, perUserLimit, opensAt, closesAt (ms or ''), holdSeconds (or ''), issued (sequences
 * handed out), returned (units given back by cancellations and expired holds), ended (ms, set by an archive).
 */
import type { ChainableCommander } from 'ioredis'
import type { Keys } from './keys.js'
import type { RedisClient } from './client.js'

const FIELDS = ['name', 'stock', 'perUserLimit', 'opensAt', 'closesAt', 'issued', 'returned', 'holdSeconds',
  'ended'] as const

export interface LiveState {
  name: string; stock: number; perUserLimit: number; opensAt: number | null; closesAt: number | null; issued: number
  /** Units given back (cancellations, expired holds): issued again under new sequences. */
  returned: number
  holdSeconds: number | null
  /** Set once an archive has ended the campaign (ms). */
  endedAt: number | null
}

export type CampaignState = 'scheduled' | 'open' | 'sold_out' | 'closed'

const ms = (v: string | null | undefined) => (v ? Number(v) : null)

/** A window bound as the hash stores it: epoch ms, or '' for none. */
export const settingMs = (d: Date | null): string => (d ? String(d.getTime()) : '')
/** holdSeconds as the hash stores it: '' for final claims. */
export const settingHold = (s: number | null | undefined): string => (s ? String(s) : '')

/** The settings fields (not stock: it only grows) as the hash holds them for these database settings. */
export const storedSettings = (c: { name: string; perUserLimit: number; opensAt: Date | null; closesAt: Date | null;
  holdSeconds: number | null }): Record<string, string> => ({
  name: c.name, perUserLimit: String(c.perUserLimit), opensAt: settingMs(c.opensAt), closesAt: settingMs(c.closesAt),
  holdSeconds: settingHold(c.holdSeconds),
})

/** The HMGET reply of FIELDS as a live state; null when the claim script would answer "unavailable". */
function parse(values: (string | null)[]): LiveState | null {
  const [name, stock, limit, opensAt, closesAt, issued, returned, holdSeconds, ended] = values
  if (stock == null || issued == null || limit == null) return null
  return {
    name: name ?? '', stock: Number(stock), perUserLimit: Number(limit), opensAt: ms(opensAt), closesAt: ms(closesAt),
    issued: Number(issued), returned: Number(returned ?? 0), holdSeconds: ms(holdSeconds), endedAt: ms(ended),
  }
}

/** A campaign's live state, or null when Redis has none (lost, or archived). */
export async function readLiveState(redis: RedisClient, keys: Keys, id: string): Promise<LiveState | null> {
  return parse(await redis.hmget(keys.campaign(id), ...FIELDS))
}

/** The same read queued on a pipeline (one round trip with other reads); parse its reply with liveStateOf. */
export const queueLiveState = (pipe: ChainableCommander, keys: Keys, id: string): ChainableCommander =>
  pipe.hmget(keys.campaign(id), ...FIELDS)

/** A pipelined read's reply (queueLiveState) as a live state. */
export const liveStateOf = (reply: unknown): LiveState | null => parse(reply as (string | null)[])

/** The hash exactly as stored (strings), or null when Redis has no live state for the campaign (reconcile). */
export async function readRawLiveState(redis: RedisClient, keys: Keys,
  id: string): Promise<Record<string, string> | null> {
  const h = await redis.hgetall(keys.campaign(id))
  return Object.keys(h).length === 0 ? null : h
}

/** The issued counter alone (reconcile reads it between pages); null when missing. */
export async function readIssued(redis: RedisClient, keys: Keys, id: string): Promise<number | null> {
  const v = await redis.hget(keys.campaign(id), 'issued')
  return v == null ? null : Number(v)
}

/** Units held by claims: sequences handed out minus units given back. */
const activeOf = (live: Pick<LiveState, 'issued' | 'returned'>): number => live.issued - live.returned

/** Stock left: what a claim can still take (returned units count again). */
export const remainingOf = (live: Pick<LiveState, 'stock' | 'issued' | 'returned'>): number =>
  Math.max(0, live.stock - activeOf(live))

/** The public state at `now` (ms; Redis's clock where the caller has it). */
export function campaignState(live: LiveState, now = Date.now()): CampaignState {
  if (live.endedAt !== null || (live.closesAt !== null && now >= live.closesAt)) return 'closed'
  if (remainingOf(live) === 0) return 'sold_out'
  if (live.opensAt !== null && now < live.opensAt) return 'scheduled'
  return 'open'
}
