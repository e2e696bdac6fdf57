import { toEntry, type StreamEntry } from './entry.js'
import type { RedisClient } from '../redis/client.js'
import { keySlot } from '../redis/slots.js'
import { flatRecord } from '../redis/codec.js'
import type { Ticket } from '../durability/durability.js'

type RawEntry = [string, string[] | null]

/** XREADGROUP answers a map: [[stream, entries], ...] over RESP2, flat [stream, entries, ...] over RESP3. */
function streamPairs(reply: unknown[]): [string, RawEntry[]][] {
  if (reply.length === 0 || Array.isArray(reply[0])) return reply as [string, RawEntry[]][]
  const pairs: [string, RawEntry[]][] = []
  for (let i = 0; i + 1 < reply.length; i += 2) pairs.push([String(reply[i]), reply[i + 1] as RawEntry[]])
  return pairs
}

export const isNoGroup = (err: unknown): boolean => /^NOGROUP/.test((err as Error)?.message ?? '')

/**
 * A read blocked on a stream that left its node: resharding MIGRATEs the stream to another master, which
 * deletes it on the source, and Redis ends the blocked XREADGROUP with "UNBLOCKED the stream key no longer
 * exists". Routine, not an error: the next read follows the stream (ASK/MOVED), or answers NOGROUP if the
 * stream is really gone.
 */
const isUnblocked = (err: unknown): boolean => /^UNBLOCKED/.test((err as Error)?.message ?? '')

/**
 * The streams one command may name together: all of them on a single Redis; on a cluster those of one
 * slot (each partition has its own, so one group per stream), since a multi-key command must stay in a slot.
 */
export function streamGroups(streams: string[], cluster: boolean): string[][] {
  if (!cluster) return [streams]
  const bySlot = new Map<number, string[]>()
  for (const s of streams) {
    const slot = keySlot(s)
    const g = bySlot.get(slot)
    if (g) g.push(s)
    else bySlot.set(slot, [s])
  }
  return [...bySlot.values()]
}

/** One blocking XREADGROUP at a time per group of streams, each on its own connection. */
export interface StreamReader { streams: string[]; blocking: RedisClient }

/**
 * Stream operations of one consumer in one group over a fixed set of streams. Every reader blocks on its
 * own connection: on a cluster a blocked connection holds up its node's other commands, and one read per
 * slot keeps each partition's latency bounded by its own traffic, not by another partition's BLOCK.
 */
export function createStreamOps(opts: {
  redis: RedisClient; readers: StreamReader[]; group: string; consumer: string
  /** The master a stream's read is about to run on (CLAIM_DURABILITY=replica); stamped on what it returns. */
  ticket?: (stream: string) => Ticket | null
}) {
  const { redis, readers, group, consumer } = opts
  const ticketsOf = (names: string[]) => new Map(names.map((s) => [s, opts.ticket?.(s)]))
  const streams = readers.flatMap((r) => r.streams)
  const groupOf = new Map(readers.flatMap((r, i) => r.streams.map((s) => [s, i] as const)))

  // Entries read but not yet handed out, the first read error, and each reader's read in flight.
  const buffer: StreamEntry[] = []
  let readError: { err: unknown } | undefined
  const reading = new Map<StreamReader, Promise<void>>()
  let wake: (() => void) | undefined

  function startRead(r: StreamReader, count: number, blockMs: number): void {
    const tickets = ticketsOf(r.streams)
    const p = (r.blocking.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', count, 'BLOCK', blockMs,
      'STREAMS', ...r.streams, ...r.streams.map(() => '>')) as Promise<unknown[] | null>)
      .then((reply) => {
        if (!reply) return
        for (const [stream, entries] of streamPairs(reply)) for (const e of entries) {
          buffer.push(toEntry(stream, e, 1, tickets.get(stream)))
        }
      }, (err: unknown) => { if (!isUnblocked(err)) readError ??= { err } })
      .finally(() => {
        reading.delete(r)
        wake?.()
      })
    reading.set(r, p)
  }

  function takeBuffered(): StreamEntry[] {
    if (buffer.length === 0 && readError) {
      const { err } = readError
      readError = undefined
      throw err
    }
    return buffer.splice(0)
  }

  return {
    /**
     * Creates the group on every stream. From id 0, never '$': after Redis came back empty the API may
     * already have added entries, and '$' would skip them for good.
     */
    async ensureGroups(): Promise<string[]> {
      const created: string[] = []
      for (const s of streams) {
        try {
          await redis.xgroup('CREATE', s, group, '0', 'MKSTREAM')
          created.push(s)
        } catch (err) {
          if (!/^BUSYGROUP/.test((err as Error).message)) throw err
        }
      }
      return created
    },

    /**
     * New entries for this consumer; COUNT applies per stream. Starts a read on every reader that has none
     * in flight, then answers what has arrived, waiting for the first read to finish when nothing has. A
     * reader is read again only when asked, so what waits here stays bounded (one answer per reader).
     */
    async readNew(count: number, blockMs: number): Promise<StreamEntry[]> {
      for (const r of readers) if (!reading.has(r)) startRead(r, count, blockMs)
      if (buffer.length === 0 && !readError) await new Promise<void>((resolve) => { wake = resolve })
      wake = undefined
      return takeBuffered()
    },

    /** Waits for the reads in flight (each ends within its BLOCK) and answers what they delivered. */
    async settleReads(): Promise<StreamEntry[]> {
      await Promise.all(reading.values())
      readError = undefined
      return buffer.splice(0)
    },

    /**
     * Takes over entries idle longer than minIdleMs from any consumer (dead or stuck), one page per call.
     * XAUTOCLAIM does not report delivery counts, so XPENDING fetches them for the claimed range.
     */
    async claimIdle(stream: string, minIdleMs: number, cursor: string,
      count: number): Promise<{ next: string; entries: StreamEntry[] }> {
      const ticket = opts.ticket?.(stream)
      const [next, raw] = (await redis.call('XAUTOCLAIM', stream, group, consumer, minIdleMs, cursor, 'COUNT',
        count)) as [string, RawEntry[], string[]?]
      if (raw.length === 0) return { next, entries: [] }
      const pending = (await redis.call('XPENDING', stream, group, raw[0]![0], raw[raw.length - 1]![0], raw.length,
        consumer)) as [string, string, number, number][]
      const deliveries = new Map(pending.map(([id, , , n]) => [id, Number(n)]))
      return { next, entries: raw.map((e) => toEntry(stream, e, deliveries.get(e[0]) ?? 1, ticket)) }
    },

    /**
     * Acknowledges and deletes in one MULTI per group of streams (one slot on a cluster, all of them on a
     * single Redis), so the stream length stays the backlog and an entry is never deleted while still
     * pending (or acked but left behind).
     */
    async ackAndDelete(entries: StreamEntry[]): Promise<void> {
      if (entries.length === 0) return
      const byGroup = new Map<number, Map<string, string[]>>()
      for (const e of entries) {
        const g = groupOf.get(e.stream) ?? -1
        let byStream = byGroup.get(g)
        if (!byStream) byGroup.set(g, byStream = new Map())
        const ids = byStream.get(e.stream)
        if (ids) ids.push(e.id)
        else byStream.set(e.stream, [e.id])
      }
      await Promise.all([...byGroup.values()].map(async (byStream) => {
        const tx = redis.multi()
        for (const [s, ids] of byStream) tx.xack(s, group, ...ids).xdel(s, ...ids)
        const res = await tx.exec()
        const failed = res?.find(([err]) => err)
        if (!res || failed) throw failed?.[0] ?? new Error('ack transaction aborted')
      }))
    },

    /** Deletes consumers of other workers that hold nothing and have been silent for minIdleMs. */
    async removeIdleConsumers(minIdleMs: number): Promise<{ stream: string; consumer: string }[]> {
      const removed: { stream: string; consumer: string }[] = []
      for (const s of streams) {
        const infos = (await redis.call('XINFO', 'CONSUMERS', s, group)) as (string | number)[][]
        for (const info of infos) {
          const m = flatRecord(info)
          const name = String(m.name)
          if (name === consumer || Number(m.pending) !== 0 || Number(m.idle) < minIdleMs) continue
          if (await redis.fcfsDeleteIdleConsumer(s, group, name, minIdleMs)) removed.push({ stream: s, consumer: name })
        }
      }
      return removed
    },

    /**
     * Entries delivered to this consumer and not yet acked, per stream: per-stream XPENDING summaries,
     * concurrent (in flight together: one round trip per node).
     */
    async ownPending(): Promise<{ stream: string; pending: number }[]> {
      return Promise.all(streams.map(async (stream) => {
        // Summary: [count, lowest id, highest id, [[consumer, count], ...] | null].
        type Summary = [number, string, string, [string, string][] | null]
        const summary = await (redis.call('XPENDING', stream, group) as Promise<Summary>).catch(() => null)
        const mine = summary?.[3]?.find(([name]) => name === consumer)
        return { stream, pending: mine ? Number(mine[1]) : 0 }
      }))
    },
  }
}
