import { readFileSync } from 'node:fs'
import type { Redis, Result } from 'ioredis'
import { toEntry, type StreamEntry } from './entry.js'

const DELETE_IDLE_CONSUMER_LUA = readFileSync(new URL('./delete-idle-consumer.lua', import.meta.url), 'utf8')

declare module 'ioredis' {
  interface RedisCommander<Context> {
    fcfsDeleteIdleConsumer(stream: string, group: string, consumer: string, minIdleMs: number): Result<number, Context>
  }
}

type RawEntry = [string, string[] | null]

/** XREADGROUP answers a map: [[stream, entries], ...] over RESP2, flat [stream, entries, ...] over RESP3. */
function streamPairs(reply: unknown[]): [string, RawEntry[]][] {
  if (reply.length === 0 || Array.isArray(reply[0])) return reply as [string, RawEntry[]][]
  const pairs: [string, RawEntry[]][] = []
  for (let i = 0; i + 1 < reply.length; i += 2) pairs.push([String(reply[i]), reply[i + 1] as RawEntry[]])
  return pairs
}

export const isNoGroup = (err: unknown): boolean => /^NOGROUP/.test((err as Error)?.message ?? '')

/** Stream operations of one consumer in one group over a fixed set of streams. */
export function createStreamOps(opts: {
  redis: Redis; blocking: Redis; streams: string[]; group: string; consumer: string
}) {
  const { redis, blocking, streams, group, consumer } = opts
  redis.defineCommand('fcfsDeleteIdleConsumer', { numberOfKeys: 1, lua: DELETE_IDLE_CONSUMER_LUA })

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

    /** New entries for this consumer; COUNT applies per stream. Runs on the blocking connection. */
    async readNew(count: number, blockMs: number): Promise<StreamEntry[]> {
      const reply = (await blocking.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', count, 'BLOCK', blockMs,
        'STREAMS', ...streams, ...streams.map(() => '>'))) as unknown[] | null
      const out: StreamEntry[] = []
      if (reply) for (const [stream, entries] of streamPairs(reply)) for (const e of entries) out.push(toEntry(stream,
        e, 1))
      return out
    },

    /**
     * Takes over entries idle longer than minIdleMs from any consumer (dead or stuck), one page per call.
     * XAUTOCLAIM does not report delivery counts, so XPENDING fetches them for the claimed range.
     */
    async claimIdle(stream: string, minIdleMs: number, cursor: string,
      count: number): Promise<{ next: string; entries: StreamEntry[] }> {
      const [next, raw] = (await redis.call('XAUTOCLAIM', stream, group, consumer, minIdleMs, cursor, 'COUNT',
        count)) as [string, RawEntry[], string[]?]
      if (raw.length === 0) return { next, entries: [] }
      const pending = (await redis.call('XPENDING', stream, group, raw[0]![0], raw[raw.length - 1]![0], raw.length,
        consumer)) as [string, string, number, number][]
      const deliveries = new Map(pending.map(([id, , , n]) => [id, Number(n)]))
      return { next, entries: raw.map((e) => toEntry(stream, e, deliveries.get(e[0]) ?? 1)) }
    },

    /**
     * Acknowledges and deletes in one MULTI per stream, so the stream length stays the backlog and an
     * entry is never deleted while still pending (or acked but left behind).
     */
    async ackAndDelete(entries: StreamEntry[]): Promise<void> {
      if (entries.length === 0) return
      const byStream = new Map<string, string[]>()
      for (const e of entries) {
        const ids = byStream.get(e.stream)
        if (ids) ids.push(e.id)
        else byStream.set(e.stream, [e.id])
      }
      const tx = redis.multi()
      for (const [s, ids] of byStream) tx.xack(s, group, ...ids).xdel(s, ...ids)
      const res = await tx.exec()
      const failed = res?.find(([err]) => err)
      if (!res || failed) throw failed?.[0] ?? new Error('ack transaction aborted')
    },

    /** Deletes consumers of other workers that hold nothing and have been silent for minIdleMs. */
    async removeIdleConsumers(minIdleMs: number): Promise<{ stream: string; consumer: string }[]> {
      const removed: { stream: string; consumer: string }[] = []
      for (const s of streams) {
        const infos = (await redis.call('XINFO', 'CONSUMERS', s, group)) as (string | number)[][]
        for (const info of infos) {
          const m = new Map<string, string | number>()
          for (let i = 0; i + 1 < info.length; i += 2) m.set(String(info[i]), info[i + 1]!)
          const name = String(m.get('name'))
          if (name === consumer || Number(m.get('pending')) !== 0 || Number(m.get('idle')) < minIdleMs) continue
          if (await redis.fcfsDeleteIdleConsumer(s, group, name, minIdleMs)) removed.push({ stream: s, consumer: name })
        }
      }
      return removed
    },

    /** Entries delivered to this consumer and not yet acked, per stream (one XPENDING summary per stream). */
    async ownPending(): Promise<{ stream: string; pending: number }[]> {
      const pipe = redis.pipeline()
      for (const s of streams) pipe.call('XPENDING', s, group)
      const res = (await pipe.exec()) ?? []
      return streams.map((stream, i) => {
        const [err, summary] = res[i] ?? [null, null]
        // Summary: [count, lowest id, highest id, [[consumer, count], ...] | null].
        const perConsumer = err ? null : (summary as [number, string, string, [string, string][] | null])[3]
        const mine = perConsumer?.find(([name]) => name === consumer)
        return { stream, pending: mine ? Number(mine[1]) : 0 }
      })
    },
  }
}
