import { hostname } from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import { isNull, sql } from 'drizzle-orm'
import type { Logger } from 'pino'
import { WORKER_METRICS_DEFAULT_PORT, type Config } from '../config.js'
import { createDb, type DbHandle } from '../db/client.js'
import { failedClaims } from '../db/schema.js'
import { createRedis, isCluster, masters } from '../redis/client.js'
import { createKeys } from '../redis/keys.js'
import { defineScripts } from '../redis/scripts.js'
import { rawEvent } from '../redis/stream-entry.js'
import { checkEvictionPolicy, EvictionPolicyError } from '../redis/eviction.js'
import type { StreamEntry } from './entry.js'
import { classifyEntries, entriesToAck, maxDeliveriesOf, oldestEntryMs, triageFailures } from './steps.js'
import { createWorkerMetrics, startMetricsServer } from './metrics.js'
import { withTimeout } from '../timeout.js'
import { errorText, persistBatch, recordFailures, type DeadLetter, type Item } from './persist.js'
import { createStreamOps, isNoGroup, streamGroups, type StreamReader } from './streams.js'
import { createLifecycleTasks } from './lifecycle-tasks.js'
import { createDurability, type Ticket } from '../durability/durability.js'

interface BatchInfo { entries: number; inserted: number; failed: number; held: number; ms: number }

export interface WorkerOptions {
  /** Called after each batch is committed and acked (benchmarks use it). */
  onBatch?: (info: BatchInfo) => void
}

class GiveUp extends Error {}

/** Redis refused a command to the worker's ACL user: retrying cannot help, so the worker stops and says which. */
class CommandRefusedError extends Error {}
const isNoPerm = (err: unknown) => /^NOPERM/.test((err as Error)?.message ?? '')
const refused = (what: string, err: unknown) => new CommandRefusedError(
  `${what}: Redis refused a command the worker needs (${(err as Error).message}); ` +
    'grant it to the ACL user (docs/security.md)')

/**
 * The persistence worker: moves claims from the partition streams into PostgreSQL, exactly once per
 * claim_id, acking only what is committed. One instance is one named consumer of the group.
 */
export function createWorker(config: Config, log: Logger, opts: WorkerOptions = {}) {
  const name = config.WORKER_NAME ?? `${hostname()}-${process.pid}`
  const group = config.WORKER_GROUP
  const keys = createKeys(config.KEY_PREFIX, config.STREAM_PARTITIONS)
  const streams = keys.streams()
  const redis = createRedis(config,
    { connectionName: `fcfs-worker:${name}`, log, commandTimeoutMs: config.REDIS_COMMAND_TIMEOUT_MS })
  defineScripts(redis)
  // Blocking reads get their own connections (one per group of streams a read may name together: one for
  // all on a single Redis, one per slot on a cluster); they wait through reconnects rather than fail reads,
  // and their timeout leaves room for the BLOCK itself.
  const readers: StreamReader[] = streamGroups(streams, isCluster(redis)).map((group, i) => ({
    streams: group,
    blocking: createRedis(config, {
      connectionName: `fcfs-worker-read:${name}:${i}`, maxRetriesPerRequest: null, autoPipelining: false, log,
      commandTimeoutMs: config.WORKER_BLOCK_MS + config.REDIS_COMMAND_TIMEOUT_MS,
    }),
  }))
  const blockingConns = readers.map((r) => r.blocking)
  // Every call bounded (src/db/client.ts): a batch on a dead or black-holed connection fails within the
  // statement bound and is retried. A batch holds no lock across a round trip (persist.ts), and a session
  // left idle in a transaction anyway (a frozen worker) is ended after 5 s, its locks released.
  const db: DbHandle = createDb(config.DATABASE_URL, { max: config.WORKER_INFLIGHT + 2,
    connectTimeoutMs: config.PG_CONNECT_TIMEOUT_MS, statementTimeoutMs: config.PG_STATEMENT_TIMEOUT_MS,
    lockTimeoutMs: config.PG_STATEMENT_TIMEOUT_MS / 2, idleInTransactionTimeoutMs: 5000 })
  // CLAIM_DURABILITY=replica: an entry is persisted only once its master reports it on the replicas, so a
  // promotion can never leave PostgreSQL ahead of the promoted master (src/durability/).
  const durability = createDurability(config, redis, keys, log, `fcfs-worker:${name}`)
  const ops = createStreamOps({ redis, readers, group, consumer: name,
    ticket: durability.enabled ? (s) => durability.ticket(keys.partitionOfStream(s)) : undefined })
  const metrics = createWorkerMetrics(group, name, {
    ownPending: () => ops.ownPending(),
    unresolvedFailures: async () => {
      const [row] = await db.db.select({ n: sql<number>`count(*)::int` }).from(failedClaims).where(isNull(
        failedClaims.resolvedAt))
      return row?.n ?? 0
    },
  })
  const stats = { batches: 0, entries: 0, inserted: 0, failed: 0, reclaimed: 0 }
  // Hold expiry and automatic archive: timers of their own on the command connection.
  const tasks = createLifecycleTasks({ config, redis, db: db.db, keys, log, metrics })
  let stopping = false
  let stopDeadline = Infinity
  let nextReclaimAt = 0
  let loop: Promise<void> | undefined
  let closing: Promise<void> | undefined
  let metricsServer: Awaited<ReturnType<typeof startMetricsServer>> | undefined

  // Rejected when the shutdown deadline passes, so that an attempt stuck inside the driver (postgres.js
  // delays reconnects by its own backoff, which grows with every failed connect of the pool: several
  // batches failing at once push it to seconds) cannot hold the shutdown past WORKER_SHUTDOWN_TIMEOUT_MS.
  const deadlinePassed = new Error('shutdown deadline passed')
  let expire!: (err: Error) => void
  const expired = new Promise<never>((_resolve, reject) => { expire = reject })
  expired.catch(() => {})

  /** Retries fn with capped exponential backoff until it succeeds, or until the shutdown deadline. */
  async function retrying<T>(what: string, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        const pending = fn()
        // An abandoned attempt acks nothing (acks follow a commit inside the same await chain).
        pending.catch(() => {})
        return await Promise.race([pending, expired])
      } catch (err) {
        if (isNoPerm(err)) throw refused(what, err)
        if (err === deadlinePassed || (stopping && Date.now() >= stopDeadline)) throw new GiveUp(
          `${what}: gave up at shutdown: ${errorText(err)}`)
        const delayMs = Math.min(2000, 100 * 2 ** Math.min(attempt - 1, 5)) * (0.5 + Math.random() / 2)
        log.warn({ what, attempt, delayMs: Math.round(delayMs), err: errorText(err) }, `${what} failed, retrying`)
        await sleep(stopping ? Math.max(0, Math.min(delayMs, stopDeadline - Date.now())) : delayMs)
      }
    }
  }

  async function ensureGroups(): Promise<void> {
    const created = await retrying('create consumer groups', () => ops.ensureGroups())
    if (created.length) log.info({ group, streams: created }, 'consumer group created (from id 0)')
  }

  async function read(): Promise<StreamEntry[]> {
    try {
      return await ops.readNew(config.WORKER_COUNT, config.WORKER_BLOCK_MS)
    } catch (err) {
      if (stopping) return []
      if (isNoPerm(err)) throw refused('read stream', err)
      if (isNoGroup(err)) {
        log.warn({ group }, 'consumer group missing (Redis restarted empty?), recreating from id 0')
        await ensureGroups()
      } else {
        log.warn({ err: errorText(err) }, 'stream read failed, retrying')
        await sleep(500)
      }
      return []
    }
  }

  /** Persist, then record failures: one retried step, so dead letters are written with the rows they explain. */
  async function persist(items: Item[], dead: DeadLetter[]) {
    return retrying('persist batch', async () => {
      const r = await persistBatch(db, items)
      const { letters, held } = triageFailures(r.failures, dead, config.MAX_DELIVERIES)
      await recordFailures(db.db, letters)
      return { inserted: r.inserted, letters, held }
    })
  }

  /** Ack (and delete) after the commit: everything but the entries held for redelivery. */
  async function ack(batch: StreamEntry[], held: Set<StreamEntry>): Promise<void> {
    await retrying('ack batch', () => ops.ackAndDelete(entriesToAck(batch, held)))
  }

  /**
   * The entries of a batch that are on the replicas (all of them when durability is off): one confirmation per
   * master read from, a few tries while that master stays the same. The rest stay pending, unacked, for the
   * reclaim (RECLAIM_IDLE_MS) to confirm later, or to vanish with a master that lost them.
   */
  async function onReplicas(batch: StreamEntry[]): Promise<StreamEntry[]> {
    if (!durability.enabled) return batch
    const tickets = new Map<string, Ticket | null>()
    const keyOf = (t: Ticket | null | undefined) => (t ? `${t.node}#${t.gen}#${t.slot}` : '')
    for (const e of batch) tickets.set(keyOf(e.ticket), e.ticket ?? null)
    const confirmed = new Set<string>()
    await Promise.all([...tickets].map(async ([k, t]) => {
      for (let attempt = 0; attempt < 3 && t && !stopping; attempt++) {
        if (await durability.confirm(t)) return void confirmed.add(k)
        await sleep(100)
      }
    }))
    const ready = batch.filter((e) => confirmed.has(keyOf(e.ticket)))
    if (ready.length < batch.length) {
      const left = batch.filter((e) => !confirmed.has(keyOf(e.ticket)))
      log.warn({ entries: left.length, streams: [...new Set(left.map((e) => e.stream))] },
        'entries not yet on CLAIM_MIN_REPLICAS replicas: left pending for the reclaim')
    }
    return ready
  }

  /** One batch: classify, persist and record failures, ack; then count and log it. */
  async function handle(all: StreamEntry[]): Promise<void> {
    const batch = await onReplicas(all)
    if (batch.length === 0) return
    const started = performance.now()
    const { items, dead } = classifyEntries(batch, config.MAX_DELIVERIES)
    const { inserted, letters, held } = await persist(items, dead)
    const insertS = (performance.now() - started) / 1000
    await ack(batch, held)
    report(batch, { items: items.length, dead: dead.length, inserted, letters, held,
      insertS, ms: performance.now() - started })
  }

  function report(batch: StreamEntry[], r: { items: number; dead: number; inserted: number; letters: DeadLetter[];
    held: Set<StreamEntry>; insertS: number; ms: number }): void {
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
    opts.onBatch?.({ entries: batch.length, inserted, failed: letters.length, held: held.size, ms })
  }

  /** Takes over entries that dead or stuck consumers left idle, then drops consumers that hold nothing. */
  async function reclaim(): Promise<void> {
    nextReclaimAt = Date.now() + config.RECLAIM_INTERVAL_MS
    for (const stream of streams) {
      let cursor = '0-0'
      for (let page = 0; page < 1000 && !stopping; page++) {
        let res
        try {
          res = await ops.claimIdle(stream, config.RECLAIM_IDLE_MS, cursor, config.WORKER_COUNT)
        } catch (err) {
          if (isNoGroup(err)) await ensureGroups()
          else if (isNoPerm(err)) throw refused('reclaim idle entries', err)
          else log.warn({ stream, err: errorText(err) }, 'reclaim failed')
          break
        }
        if (res.entries.length) {
          stats.reclaimed += res.entries.length
          log.info({ stream, entries: res.entries.length, maxDeliveries: maxDeliveriesOf(res.entries) },
            'reclaimed idle entries')
          await handle(res.entries)
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

  async function run(): Promise<void> {
    // An evicting policy would drop streams of answered claims: refuse to run (Redis down: keep retrying).
    const policy = await retrying('check eviction policy', () => checkEvictionPolicy(redis,
      config.REDIS_EVICTION_POLICY_ACK))
    if (!policy.ok) throw new EvictionPolicyError(`refusing to start: ${policy.message}`)
    await ensureGroups()
    await reclaim()
    // Up to WORKER_INFLIGHT batches are written at once, each in its own transaction on its own pooled
    // connection, and each acked after its own commit; the next XREADGROUP is in flight meanwhile.
    // Their order does not matter: dedupe is on claim_id, and the guard trigger serialises the checks of
    // one campaign by locking its row.
    const inflight = new Set<Promise<void>>()
    let failure: { err: unknown } | undefined
    const start = (batch: StreamEntry[]) => {
      const p: Promise<void> = handle(batch)
        .catch((err: unknown) => { failure ??= { err } })
        .finally(() => inflight.delete(p))
      inflight.add(p)
    }
    try {
      let next: Promise<StreamEntry[]> | null = read()
      while (next) {
        const batch: StreamEntry[] = await next
        next = stopping || failure ? null : read()
        if (batch.length) {
          while (inflight.size >= config.WORKER_INFLIGHT && !failure) await Promise.race(inflight)
          if (failure) break
          start(batch)
          // A batch that gives units back commits before any later batch starts: a later claim may have
          // taken one of those units, and the guard would refuse it against the old count.
          if (batch.some((e) => e.raw !== null && rawEvent(e.raw) !== null)) await Promise.all(inflight)
        }
        if (!stopping && !failure && Date.now() >= nextReclaimAt) await reclaim()
      }
      // Other readers' reads may still be in flight: what they deliver is handled too, not left pending.
      if (!failure) {
        const rest = await ops.settleReads()
        if (rest.length) start(rest)
      }
    } finally {
      // Never leave a batch half-done behind the caller's back: close() ends connections after this.
      await Promise.all(inflight)
    }
    if (failure) throw failure.err
  }

  return {
    name,
    stats,
    metrics,
    get metricsPort() { return metricsServer?.port },

    async start(): Promise<void> {
      if (config.WORKER_METRICS_PORT >= 0) {
        // The default port falls back to a free one, so a second worker on one host starts (and says where).
        metricsServer = await startMetricsServer({ host: config.HOST, port: config.WORKER_METRICS_PORT,
          register: metrics.register, log, ready: () => this.ready(),
          orAnyFreePort: config.WORKER_METRICS_PORT === WORKER_METRICS_DEFAULT_PORT })
      }
      log.info({ consumer: name, group, streams: streams.length, count: config.WORKER_COUNT,
        blockMs: config.WORKER_BLOCK_MS }, 'worker started')
      tasks.start()
      loop = run().catch((err) => {
        if (err instanceof GiveUp) log.warn({ err: err.message }, 'left the batch in hand pending for another worker')
        else if (err instanceof EvictionPolicyError || err instanceof CommandRefusedError) {
          log.error({ err: {
            message: err.message } }, err.message); throw err
        } else {
          log.error({ err },
            'worker loop crashed'); throw err
        }
      })
    },

    /** Resolves when the loop has ended (after close(), or rejects if it crashed). */
    done: () => loop ?? Promise.resolve(),

    /** Redis and Postgres reachable; answers within about a second even while either reconnects. */
    async ready(): Promise<{ redis: boolean; postgres: boolean }> {
      const [r, p] = await Promise.all([
        redis.status === 'ready'
          ? withTimeout(Promise.all(masters(redis).map((node) => node.ping())), 800, 'redis ping')
              .then(() => true, () => false)
          : Promise.resolve(false),
        withTimeout(db.sql`SELECT 1`.execute(), 800, 'postgres ping').then(() => true, () => false),
      ])
      return { redis: r, postgres: p }
    },

    /** Stops reading, finishes and acks the batch in hand, then closes every connection. Safe to call twice. */
    close(): Promise<void> {
      closing ??= (async () => {
        stopping = true
        stopDeadline = Date.now() + config.WORKER_SHUTDOWN_TIMEOUT_MS
        const deadline = setTimeout(() => expire(deadlinePassed), config.WORKER_SHUTDOWN_TIMEOUT_MS)
        log.info({ consumer: name }, 'worker stopping: finishing the batch in hand')
        await tasks.stop()
        if (loop) {
          const finished = await Promise.race([loop.then(() => true, () => true),
            sleep(config.WORKER_SHUTDOWN_TIMEOUT_MS + config.WORKER_BLOCK_MS, false)])
          // A read stuck on a dead Redis never returns by itself; closing its connection ends it.
          if (!finished) for (const conn of blockingConns) conn.disconnect()
          await loop.catch(() => {})
        }
        clearTimeout(deadline)
        const steps: [string, () => Promise<unknown> | void][] = [
          ['blocking redis', () => { for (const conn of blockingConns) conn.disconnect() }],
          ['metrics server', () => metricsServer?.server.close()],
          ['durability', () => durability.close()],
          ['redis', () => redis.quit().catch(() => redis.disconnect())],
          ['postgres', () => db.close()],
        ]
        for (const [what, step] of steps) {
          try { await step() } catch (err) { log.warn({ what, err: errorText(err) }, 'close step failed') }
        }
        log.info({ consumer: name, ...stats }, 'worker stopped')
      })()
      return closing
    },
  }
}
