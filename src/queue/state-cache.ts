import type { Keys } from '../redis/keys.js'
import type { RedisClient } from '../redis/client.js'
import { readFigures, type QueueFigures } from './store.js'

/** How old a public answer may be: one Redis call per campaign per instance per second, whatever the polling. */
const QUEUE_STATE_MAX_AGE_MS = 1000
const MAX_ENTRIES = 10_000

/**
 * The per-instance cache of GET /v1/campaigns/:id/queue: a reading is served until it is a second old, and
 * concurrent misses share one read (single flight), so a million pollers cost one state.lua a second.
 */
export function createQueueStateCache(redis: RedisClient, keys: Keys, now = () => Date.now()) {
  const entries = new Map<string, { at: number; figures: QueueFigures | null }>()
  const inflight = new Map<string, Promise<QueueFigures | null>>()
  return async function figures(id: string): Promise<QueueFigures | null> {
    const hit = entries.get(id)
    if (hit && now() - hit.at < QUEUE_STATE_MAX_AGE_MS) return hit.figures
    let p = inflight.get(id)
    if (!p) {
      const startedAt = now()
      p = readFigures(redis, keys, id).then((f) => {
        if (entries.size >= MAX_ENTRIES) entries.clear()
        // Dated by when the read started: the answer is never older than the max age claims.
        entries.set(id, { at: startedAt, figures: f })
        return f
      }).finally(() => inflight.delete(id))
      inflight.set(id, p)
    }
    return p
  }
}
