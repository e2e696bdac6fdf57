/**
 * The pure steps of a batch, apart from the I/O around them (read: streams.ts; persist and record failures:
 * persist.ts; ack: streams.ts), so each can be tested without Redis or PostgreSQL (test/unit/worker-steps).
 */
import { parseEntry, type StreamEntry } from './entry.js'
import type { DeadLetter, Item, PersistResult } from './persist.js'

/**
 * Classify: each entry becomes a row to write (a claim, or a claim with its lifecycle event) or a dead
 * letter: delivered more than maxDeliveries times, or unparsable (retrying cannot make it parse).
 */
export function classifyEntries(batch: StreamEntry[], maxDeliveries: number): { items: Item[]; dead: DeadLetter[] } {
  const items: Item[] = []
  const dead: DeadLetter[] = []
  for (const entry of batch) {
    if (entry.deliveries > maxDeliveries) {
      dead.push({ entry, error: `delivered ${entry.deliveries} times, more than MAX_DELIVERIES (${maxDeliveries})` })
      continue
    }
    const parsed = parseEntry(entry)
    if (typeof parsed === 'string') dead.push({ entry, error: `unparsable entry: ${parsed}` })
    else if ('event' in parsed) {
      const { event, ...row } = parsed
      items.push({ entry, row, event })
    } else items.push({ entry, row: parsed })
  }
  return { items, dead }
}

/**
 * After persisting: a row the database refused for good, or one out of deliveries, joins the dead letters;
 * any other failed row is held (left pending, not acked) for a later delivery.
 */
export function triageFailures(failures: PersistResult['failures'], dead: DeadLetter[],
  maxDeliveries: number): { letters: DeadLetter[]; held: Set<StreamEntry> } {
  const letters = [...dead]
  const held = new Set<StreamEntry>()
  for (const f of failures) {
    if (f.refused || f.item.entry.deliveries >= maxDeliveries) letters.push({ entry: f.item.entry, error: f.error })
    else held.add(f.item.entry)
  }
  return { letters, held }
}

/** Ack: everything of the batch but the entries held for redelivery. */
export const entriesToAck = (batch: StreamEntry[], held: Set<StreamEntry>): StreamEntry[] =>
  (held.size ? batch.filter((e) => !held.has(e)) : batch)

/**
 * The ms timestamp of the batch's oldest entry id (its lag). A loop, not Math.min(...batch): spreading a
 * large batch into arguments throws RangeError.
 */
export function oldestEntryMs(batch: StreamEntry[]): number {
  let oldest = Infinity
  for (const e of batch) oldest = Math.min(oldest, Number(e.id.slice(0, e.id.indexOf('-'))))
  return oldest
}

/** The highest delivery count among entries (a loop, for the same reason). */
export function maxDeliveriesOf(entries: StreamEntry[]): number {
  let max = 0
  for (const e of entries) max = Math.max(max, e.deliveries)
  return max
}
