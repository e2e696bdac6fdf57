/**
 * The worker's named steps, each a function of the worker's parts (wired by createWorker in worker.ts):
 * read -> classify (steps.ts) -> persist -> ack -> report, one batch at a time through handle(); reclaim
 * takes over what other consumers left idle; run() is the loop that drives them.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { Logger } from 'pino'
import type { Config } from '../config.js'
import type { DbHandle } from '../db/client.js'
import { rawEvent } from '../redis/stream-entry.js'
import type { StreamEntry } from './entry.js'
import { classifyEntries, entriesToAck, maxDeliveriesOf, oldestEntryMs, triageFailures } from './steps.js'
import type { WorkerMetrics } from './metrics.js'
import { errorText, persistBatch, recordFailures, type DeadLetter, type Item } from './persist.js'
import { createStreamOps, isNoGroup } from './streams.js'
import { isNoPerm, refused, type Retrying, type Shutdown } from './retrying.js'
import { withTimeout } from '../timeout.js'
import type { Durability, Ticket } from '../durability/durability.js'

export interface BatchInfo { entries: number; inserted: number; failed: number; held: number; ms: number }

interface WorkerStats { batches: number; entries: number; inserted: number; failed: number; reclaimed: number }

/** What every step works with: the worker's configuration, connections, counters and shutdown state. */
export interface WorkerParts {
  config: Config
  log: Logger
  group: string
  streams: string[]
  db: DbHandle
  ops: ReturnType<typeof createStreamOps>
  /** CLAIM_DURABILITY=replica: confirms that entries read are on the replicas before they are persisted. */
  durability: Durability
  metrics: WorkerMetrics
  stats: WorkerStats
  retrying: Retrying
  shutdown: Shutdown
  /** When the next reclaim is due (ms since the epoch). */
  nextReclaimAt: number
  onBatch?: (info: BatchInfo) => void
}

export async function ensureGroups(w: WorkerParts): Promise<void> {
  const created = await w.retrying('create consumer groups', () => w.ops.ensureGroups())
  if (created.length) w.log.info({ group: w.group, streams: created }, 'consumer group created (from id 0)')
}

/** Read: the next new entries of every stream (empty on a failed read, which is logged and waited out). */
export async function read(w: WorkerParts): Promise<StreamEntry[]> {
  try {
    return await w.ops.readNew(w.config.WORKER_COUNT, w.config.WORKER_BLOCK_MS)
  } catch (err) {
    if (w.shutdown.stopping) return []
    if (isNoPerm(err)) throw refused('read stream', err)
    if (isNoGroup(err)) {
      w.log.warn({ group: w.group }, 'consumer group missing (Redis restarted empty?), recreating from id 0')
      await ensureGroups(w)
    } else {
      w.log.warn({ err: errorText(err) }, 'stream read failed, retrying')
      await sleep(500)
    }
    return []
  }
}

/**
 * How long one step of a persist attempt (the batch's write: a connection and three messages; one row's
 * write; the dead letters' write) may take before the attempt is abandoned and retried. Every statement is
 * bounded (src/db/client.ts), but the driver has left one unsettled after its connection closed
 * mid-request (the cases found are patched: scripts/patch-postgres.mjs); this keeps another such case from
 * holding a batch, and a shutdown, for good. An abandoned step that commits later is harmless: rows are
 * keyed on claim_id, and only an attempt that answered is acked.
 */
const persistStepMs = (c: Config) => c.PG_CONNECT_TIMEOUT_MS + 4 * (c.PG_STATEMENT_TIMEOUT_MS + 500)

/** Persist, then record failures: one retried step, so dead letters are written with the rows they explain. */
export async function persist(w: WorkerParts, items: Item[], dead: DeadLetter[]) {
  const stepMs = persistStepMs(w.config)
  return w.retrying('persist batch', async () => {
    const r = await persistBatch(w.db, items, { stepMs })
    const { letters, held } = triageFailures(r.failures, dead, w.config.MAX_DELIVERIES)
    await withTimeout(recordFailures(w.db.db, letters), stepMs, 'dead letters write')
    return { inserted: r.inserted, letters, held }
  })
}

/** Ack (and delete) after the commit: everything but the entries held for redelivery. */
export async function ack(w: WorkerParts, batch: StreamEntry[], held: Set<StreamEntry>): Promise<void> {
  await w.retrying('ack batch', () => w.ops.ackAndDelete(entriesToAck(batch, held)))
}

/** Report: counts, metrics and the log lines of one batch done. */
export function report(w: WorkerParts, batch: StreamEntry[], r: { items: number; dead: number; inserted: number;
  letters: DeadLetter[]; held: Set<StreamEntry>; insertS: number; ms: number }): void {
  const { stats, metrics, log } = w
  const { inserted, letters, held, ms } = r
  stats.batches++
  stats.entries += batch.length
  stats.inserted += inserted
  stats.failed += letters.length
  metrics.batchSize.observe(batch.length)
  metrics.insertSeconds.observe(r.insertS)
  metrics.persisted.inc(inserted)
  if (letters.length) metrics.failed.inc(letters.length)
  log.info({ entries: batch.length, inserted, duplicates: r.items - inserted - (letters.length - r.dead) - held.size,
    failed: letters.length, held: held.size, ms: Math.round(ms), lagMs: Date.now() - oldestEntryMs(batch) },
  'batch persisted')
  for (const l of letters) log.warn({ stream: l.entry.stream, entryId: l.entry.id, attempts: l.entry.deliveries,
    error: l.error }, 'entry moved to failed_claims')
  for (const e of held) log.warn({ stream: e.stream, entryId: e.id, deliveries: e.deliveries },
    'entry left pending for redelivery')
  w.onBatch?.({ entries: batch.length, inserted, failed: letters.length, held: held.size, ms })
}

/**
 * Confirm: the entries of a batch that are on the replicas (all of them when durability is off), so a
 * promotion can never leave PostgreSQL ahead of the promoted master. One confirmation per master read from,
 * a few tries while that master stays the same. The rest stay pending, unacked, for the reclaim
 * (RECLAIM_IDLE_MS) to confirm later, or to vanish with a master that lost them.
 */
async function onReplicas(w: WorkerParts, batch: StreamEntry[]): Promise<StreamEntry[]> {
  const { durability } = w
  if (!durability.enabled) return batch
  const tickets = new Map<string, Ticket | null>()
  const keyOf = (t: Ticket | null | undefined) => (t ? `${t.node}#${t.gen}#${t.slot}` : '')
  for (const e of batch) tickets.set(keyOf(e.ticket), e.ticket ?? null)
  const confirmed = new Set<string>()
  await Promise.all([...tickets].map(async ([k, t]) => {
    for (let attempt = 0; attempt < 3 && t && !w.shutdown.stopping; attempt++) {
      if (await durability.confirm(t)) return void confirmed.add(k)
      await sleep(100)
    }
  }))
  const ready = batch.filter((e) => confirmed.has(keyOf(e.ticket)))
  if (ready.length < batch.length) {
    const left = batch.filter((e) => !confirmed.has(keyOf(e.ticket)))
    w.log.warn({ entries: left.length, streams: [...new Set(left.map((e) => e.stream))] },
      'entries not yet on CLAIM_MIN_REPLICAS replicas: left pending for the reclaim')
  }
  return ready
}

/** One batch: confirm, classify, persist and record failures, ack; then count and log it. */
async function handle(w: WorkerParts, all: StreamEntry[]): Promise<void> {
  const batch = await onReplicas(w, all)
  if (batch.length === 0) return
  const started = performance.now()
  const { items, dead } = classifyEntries(batch, w.config.MAX_DELIVERIES)
  const { inserted, letters, held } = await persist(w, items, dead)
  const insertS = (performance.now() - started) / 1000
  await ack(w, batch, held)
  report(w, batch, { items: items.length, dead: dead.length, inserted, letters, held,
    insertS, ms: performance.now() - started })
}

/** Takes over entries that dead or stuck consumers left idle, then drops consumers that hold nothing. */
export async function reclaim(w: WorkerParts): Promise<void> {
  const { config, ops, log } = w
  w.nextReclaimAt = Date.now() + config.RECLAIM_INTERVAL_MS
  for (const stream of w.streams) {
    let cursor = '0-0'
    for (let page = 0; page < 1000 && !w.shutdown.stopping; page++) {
      let res
      try {
        res = await ops.claimIdle(stream, config.RECLAIM_IDLE_MS, cursor, config.WORKER_COUNT)
      } catch (err) {
        if (isNoGroup(err)) await ensureGroups(w)
        else if (isNoPerm(err)) throw refused('reclaim idle entries', err)
        else log.warn({ stream, err: errorText(err) }, 'reclaim failed')
        break
      }
      if (res.entries.length) {
        w.stats.reclaimed += res.entries.length
        log.info({ stream, entries: res.entries.length, maxDeliveries: maxDeliveriesOf(res.entries) },
          'reclaimed idle entries')
        await handle(w, res.entries)
      }
      cursor = res.next
      if (cursor === '0-0') break
    }
  }
  try {
    for (const r of await ops.removeIdleConsumers(config.RECLAIM_IDLE_MS)) log.info(r, 'stale consumer removed')
  } catch (err) {
    log.warn({ err: errorText(err) }, 'stale consumer cleanup failed')
  }
}

/**
 * The loop: reads while up to WORKER_INFLIGHT batches are written at once, each in its own transaction on
 * its own pooled connection and acked after its own commit; the next XREADGROUP is in flight meanwhile.
 * Their order does not matter: dedupe is on claim_id, and the guard trigger serialises the checks of one
 * campaign by locking its row. Ends once stopping, after the batches in hand (or throws the first failure).
 */
export async function runLoop(w: WorkerParts): Promise<void> {
  const { config, shutdown } = w
  const inflight = new Set<Promise<void>>()
  let failure: { err: unknown } | undefined
  const start = (batch: StreamEntry[]) => {
    const p: Promise<void> = handle(w, batch)
      .catch((err: unknown) => { failure ??= { err } })
      .finally(() => inflight.delete(p))
    inflight.add(p)
  }
  try {
    let next: Promise<StreamEntry[]> | null = read(w)
    while (next) {
      const batch: StreamEntry[] = await next
      next = shutdown.stopping || failure ? null : read(w)
      if (batch.length) {
        while (inflight.size >= config.WORKER_INFLIGHT && !failure) await Promise.race(inflight)
        if (failure) break
        start(batch)
        // A batch that gives units back commits before any later batch starts: a later claim may have
        // taken one of those units, and the guard would refuse it against the old count.
        if (batch.some((e) => e.raw !== null && rawEvent(e.raw) !== null)) await Promise.all(inflight)
      }
      if (!shutdown.stopping && !failure && Date.now() >= w.nextReclaimAt) await reclaim(w)
    }
    // Other readers' reads may still be in flight: what they deliver is handled too, not left pending.
    if (!failure) {
      const rest = await w.ops.settleReads()
      if (rest.length) start(rest)
    }
  } finally {
    // Never leave a batch half-done behind the caller's back: close() ends connections after this.
    await Promise.all(inflight)
  }
  if (failure) throw failure.err
}
