/**
 * What this instance knows locally about sold-out campaigns, so that the many late arrivals of a burst
 * cost no Redis round trip. It can only ever answer SOLD_OUT, never issue, so it cannot oversell; what it
 * guards against is a stale 410 after stock was added:
 * - it remembers a campaign only after Redis answered SOLD_OUT for it;
 * - it forgets a campaign the moment a campaign-changed event arrives (stock added, state rebuilt), and an
 *   answer that was in flight when any event arrived is not remembered (the generation check: the reply and
 *   the event travel on different connections, so the event may overtake the reply);
 * - while the event subscription is down it neither remembers nor answers (events may be lost meanwhile);
 * - entries expire after ttlMs, bounding the damage of a change nobody announced (e.g. made by hand).
 */
export interface SoldOutCache {
  /** True when this instance may answer SOLD_OUT for the campaign without asking Redis. */
  has(campaignId: string): boolean
  /** Call before sending the claim to Redis; pass the result to remember(). */
  mark(): number
  /** Redis answered SOLD_OUT to a claim sent at `mark`. */
  remember(campaignId: string, mark: number): void
  /** A campaign-changed event: forget one campaign, or all when the event names none. */
  forget(campaignId?: string): void
  /** Whether the event subscription is up; going down forgets everything. */
  setLive(live: boolean): void
}

export function createSoldOutCache(ttlMs: number, now: () => number = Date.now): SoldOutCache {
  const until = new Map<string, number>()
  let generation = 0
  let live = false
  const forgetAll = () => {
    generation++
    until.clear()
  }
  return {
    has(id) {
      if (!live) return false
      const t = until.get(id)
      if (t === undefined) return false
      if (t > now()) return true
      until.delete(id)
      return false
    },
    mark: () => generation,
    remember(id, mark) {
      if (!live || ttlMs <= 0 || mark !== generation) return
      // Campaign ids are checked numeric strings; the bound only guards memory against a flood of them.
      if (until.size >= 10_000) until.clear()
      until.set(id, now() + ttlMs)
    },
    forget(id) {
      if (id === undefined) return forgetAll()
      generation++
      until.delete(id)
    },
    setLive(v) {
      live = v
      if (!v) forgetAll()
    },
  }
}
