import type { FastifyBaseLogger } from 'fastify'
import type { LiveSnapshot } from './snapshot.js'

/** What a viewer receives: a snapshot, or the end of the feed (campaign gone or archived). */
/** A snapshot travels with its JSON, serialized once for every viewer. */
export type LiveMessage =
  | { type: 'snapshot'; snapshot: LiveSnapshot; json: string }
  | { type: 'error'; message: string }
  | { type: 'end'; reason: string }

export interface Viewer { send: (m: LiveMessage) => void }

export interface HubOptions {
  intervalMs: number
  /** Builds the reader of one campaign; it returns null when the campaign has no live state. */
  snapshotter: (campaignId: string) => () => Promise<LiveSnapshot | null>
  /** Asked when Redis has no live state: 'gone' ends the feed, 'unavailable' keeps it waiting for reconcile. */
  whyMissing: (campaignId: string) => Promise<'gone' | 'unavailable'>
  log: FastifyBaseLogger
}

/**
 * One poller per watched campaign per instance, however many viewers: each tick reads Redis once (and
 * PostgreSQL at most once) and hands the same snapshot to every viewer. The poller exists only while
 * someone watches; with nobody watching the instance does no work at all.
 */
export function createLiveHub(opts: HubOptions) {
  const pollers = new Map<string, { viewers: Set<Viewer>; timer: NodeJS.Timeout; last: LiveMessage | null }>()

  function broadcast(id: string, m: LiveMessage) {
    const p = pollers.get(id)
    if (!p) return
    for (const v of p.viewers) v.send(m)
  }

  function stop(id: string) {
    const p = pollers.get(id)
    if (!p) return
    clearTimeout(p.timer)
    pollers.delete(id)
  }

  function start(id: string) {
    const next = opts.snapshotter(id)
    const entry = { viewers: new Set<Viewer>(), timer: undefined as unknown as NodeJS.Timeout,
      last: null as LiveMessage | null }
    pollers.set(id, entry)
    // Ticks are chained (not setInterval): a slow Redis or PostgreSQL never stacks reads up.
    const tick = async () => {
      if (pollers.get(id) !== entry) return
      const started = Date.now()
      try {
        const s = await next()
        if (pollers.get(id) !== entry) return
        if (s) {
          entry.last = { type: 'snapshot', snapshot: s, json: JSON.stringify(s) }
          broadcast(id, entry.last)
        } else if ((await opts.whyMissing(id)) === 'gone') {
          broadcast(id, { type: 'end', reason: 'campaign archived or deleted' })
          for (const v of entry.viewers) entry.viewers.delete(v)
          stop(id)
          return
        } else {
          broadcast(id, { type: 'error', message: 'the campaign has no live state in Redis (run reconcile)' })
        }
      } catch (err) {
        opts.log.warn({ err, campaignId: id }, 'live feed: read failed')
        broadcast(id, { type: 'error', message: 'could not read the campaign\'s numbers; retrying' })
      }
      if (pollers.get(id) === entry) {
        entry.timer = setTimeout(tick, Math.max(0, opts.intervalMs - (Date.now() - started)))
      }
    }
    entry.timer = setTimeout(tick, 0)
    return entry
  }

  return {
    /** Adds a viewer; returns the function that removes it (the poller stops with its last viewer). */
    watch(id: string, viewer: Viewer): () => void {
      const p = pollers.get(id) ?? start(id)
      p.viewers.add(viewer)
      // A newcomer sees the last numbers at once instead of waiting for the next tick.
      if (p.last) viewer.send(p.last)
      return () => {
        const cur = pollers.get(id)
        if (cur !== p) return
        p.viewers.delete(viewer)
        if (p.viewers.size === 0) stop(id)
      }
    },
    /** Ends every feed (the server is closing: open streams would hold it up). */
    closeAll(reason: string) {
      for (const [id, p] of pollers) {
        for (const v of p.viewers) v.send({ type: 'end', reason })
        stop(id)
      }
    },
    stats: () => ({ campaigns: pollers.size, viewers: [...pollers.values()].reduce((n, p) => n + p.viewers.size, 0) }),
  }
}

export type LiveHub = ReturnType<typeof createLiveHub>
