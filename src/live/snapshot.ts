import type { RedisClient } from '../redis/client.js'
import { withTimeout } from '../timeout.js'
import type { Keys } from '../redis/keys.js'
import { campaignState, liveStateOf, queueLiveState, remainingOf, type CampaignState, type LiveState }
  from '../redis/campaign-hash.js'
import { flatRecord } from '../redis/codec.js'
import { createLiveQueueReader, type LiveQueue } from '../queue/live.js'

/** Answer classes the page charts. */
const OUTCOMES = ['201', '409', '410', '429', 'errors'] as const
export type Outcome = (typeof OUTCOMES)[number]

/** One event of the feed (GET /admin/campaigns/:id/live) and what the page shows. */
export interface LiveSnapshot {
  campaignId: string
  name: string
  /** When the numbers were read (ISO). */
  at: string
  state: CampaignState
  stock: number
  issued: number
  remaining: number
  /** Claims rows in PostgreSQL (read at most once per interval, shared by every viewer of this instance). */
  persisted: number
  pending: number
  /** Unresolved dead letters of the campaign's stream (its partition: shared with other campaigns there). */
  deadLettered: number
  /**
   * Answers per second. `201` is the campaign's issued counter's rise (every instance); the refusals and
   * errors are this instance's answers to claims on any campaign (its metrics), see docs/operations.md.
   */
  claimsPerSecond: Record<Outcome, number>
  stream: {
    key: string
    /** XLEN: entries issued and not yet persisted (the stream is shared by the campaigns of one partition). */
    backlog: number
    /** Entries not yet delivered to the workers' group (null: no group yet, or Redis cannot tell). */
    lag: number | null
    /** Age of the oldest entry still in the stream: how far behind the workers are, in time. */
    oldestAgeMs: number | null
  }
  /** The waiting room beside the stock (issue 21); null when the campaign has none. */
  queue: LiveQueue | null
}

/** What the poller needs from PostgreSQL (one query answers both). */
interface DurableCounts { persisted: number; deadLettered: number }

export interface SnapshotSources {
  redis: RedisClient
  keys: Keys
  workerGroup: string
  timeoutMs: number
  durableCounts: (campaignId: string, stream: string) => Promise<DurableCounts>
  /** This instance's claim answers so far, by HTTP status (cumulative counters). */
  answersByStatus: () => Promise<Map<number, number>>
}

const field = (flat: unknown[], name: string): unknown => flatRecord(flat)[name]

const classify = (status: number): Outcome | null => {
  if (status === 201 || status === 409 || status === 410 || status === 429) return String(status) as Outcome
  return status >= 500 ? 'errors' : null
}

export type RedisReading = { live: null } | {
  live: LiveState
  backlog: number; lag: number | null; oldestAgeMs: number | null; nowMs: number
}

/**
 * One pipelined round trip, every key in the campaign's slot: the campaign hash, and the length, group
 * info and oldest entry of its stream. Redis TIME dates the oldest entry with the clock that made its id.
 */
async function readRedis(src: SnapshotSources, campaignId: string): Promise<RedisReading> {
  const stream = src.keys.streamOf(campaignId)
  const pipe = queueLiveState(src.redis.pipeline(), src.keys, campaignId)
    .xlen(stream)
    .xinfo('GROUPS', stream)
    .xrange(stream, '-', '+', 'COUNT', 1)
    .time()
  const res = await withTimeout(pipe.exec(), src.timeoutMs, 'live feed read')
  if (!res) throw new Error('live feed read: pipeline aborted')
  const [hashErr, hash] = res[0]!
  if (hashErr) throw hashErr
  const live = liveStateOf(hash)
  if (!live) return { live: null }
  const [timeErr, time] = res[4]!
  const [sec, usec] = (time ?? []) as string[]
  const nowMs = timeErr ? Date.now() : Number(sec) * 1000 + Math.floor(Number(usec) / 1000)
  const backlog = res[1]![0] ? 0 : Number(res[1]![1])
  let lag: number | null = null
  const [groupsErr, groups] = res[2]!
  if (!groupsErr && Array.isArray(groups)) {
    const g = (groups as unknown[][]).find((info) => String(field(info, 'name')) === src.workerGroup)
    const l = g ? field(g, 'lag') : undefined
    if (l !== undefined && l !== null) lag = Number(l)
  }
  let oldestAgeMs: number | null = null
  const [rangeErr, range] = res[3]!
  const first = !rangeErr && Array.isArray(range) ? (range as [string, string[]][])[0] : undefined
  if (first) oldestAgeMs = Math.max(0, nowMs - Number(first[0].split('-')[0]))
  return { live, backlog, lag, oldestAgeMs, nowMs }
}

/**
 * Computes successive snapshots of one campaign. Rates come from differences between two readings,
 * so the first snapshot reports 0/s.
 */
export function createSnapshotter(src: SnapshotSources, campaignId: string, durableEveryMs: number) {
  let prev: { at: number; issued: number; answers: Map<number, number> } | null = null
  let durable: DurableCounts | null = null
  let durableAt = 0
  const queue = createLiveQueueReader(src.redis, src.keys, campaignId)

  return async function next(): Promise<LiveSnapshot | null> {
    const stream = src.keys.streamOf(campaignId)
    // PostgreSQL before Redis: every persisted claim was issued earlier, so persisted <= issued holds in
    // each snapshot. Skipped while nothing can have changed (all that was issued at the last look is
    // persisted), except every durableEveryMs (dead letters, a repair elsewhere).
    if (!durable || (prev && durable.persisted < prev.issued) || Date.now() - durableAt >= durableEveryMs) {
      durable = await withTimeout(src.durableCounts(campaignId, stream), src.timeoutMs, 'live feed counts')
      durableAt = Date.now()
    }
    const [r, answers, q] = await Promise.all([readRedis(src, campaignId), src.answersByStatus(),
      withTimeout(queue(), src.timeoutMs, 'live feed queue')])
    if (!r.live) return null
    const now = Date.now()
    const rates = Object.fromEntries(OUTCOMES.map((o) => [o, 0])) as Record<Outcome, number>
    if (prev && now > prev.at) {
      const dt = (now - prev.at) / 1000
      rates['201'] = Math.max(0, r.live.issued - prev.issued) / dt
      for (const [status, n] of answers) {
        const o = classify(status)
        if (o && o !== '201') rates[o] += Math.max(0, n - (prev.answers.get(status) ?? 0)) / dt
      }
      for (const o of OUTCOMES) rates[o] = Math.round(rates[o] * 10) / 10
    }
    prev = { at: now, issued: r.live.issued, answers }
    const { live } = r
    return {
      campaignId,
      name: live.name,
      at: new Date(now).toISOString(),
      state: campaignState(live, r.nowMs),
      stock: live.stock,
      issued: live.issued,
      remaining: remainingOf(live),
      persisted: durable.persisted,
      pending: Math.max(0, live.issued - durable.persisted),
      deadLettered: durable.deadLettered,
      claimsPerSecond: rates,
      stream: { key: stream, backlog: r.backlog, lag: r.lag, oldestAgeMs: r.oldestAgeMs },
      queue: q,
    }
  }
}
