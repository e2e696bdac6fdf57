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
import { checkEvictionPolicy, EvictionPolicyError } from '../redis/eviction.js'
import { createWorkerMetrics, startMetricsServer } from './metrics.js'
import { withTimeout } from '../timeout.js'
import { errorText } from './persist.js'
import { createStreamOps, streamGroups, type StreamReader } from './streams.js'
import { createLifecycleTasks } from './lifecycle-tasks.js'
import { CommandRefusedError, createRetrying, createShutdown, GiveUp } from './retrying.js'
import { ensureGroups, reclaim, runLoop, type BatchInfo, type WorkerParts } from './loop.js'
import { createDurability } from '../durability/durability.js'

export interface WorkerOptions {
  /** Called after each batch is committed and acked (benchmarks use it). */
  onBatch?: (info: BatchInfo) => void
}

/**
 * The worker's connections and the parts its named steps (loop.ts) share; createWorker starts and stops
 * them. Tests drive the steps one by one on these.
 */
export function createWorkerParts(config: Config, log: Logger, opts: WorkerOptions = {}) {
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
  const shutdown = createShutdown()
  const parts: WorkerParts = { config, log, group, streams, db, ops, metrics, stats, durability,
    retrying: createRetrying(log, shutdown), shutdown, nextReclaimAt: 0, onBatch: opts.onBatch }
  return { name, redis, blockingConns, tasks, parts }
}

/**
 * The persistence worker: moves claims from the partition streams into PostgreSQL, exactly once per
 * claim_id, acking only what is committed. One instance is one named consumer of the group.
 */
export function createWorker(config: Config, log: Logger, opts: WorkerOptions = {}) {
  const { name, redis, blockingConns, tasks, parts: w } = createWorkerParts(config, log, opts)
  const { group, streams, db, metrics, stats, shutdown, durability } = w
  let loop: Promise<void> | undefined
  let closing: Promise<void> | undefined
  let metricsServer: Awaited<ReturnType<typeof startMetricsServer>> | undefined

  async function run(): Promise<void> {
    // An evicting policy would drop streams of answered claims: refuse to run (Redis down: keep retrying).
    const policy = await w.retrying('check eviction policy', () => checkEvictionPolicy(redis,
      config.REDIS_EVICTION_POLICY_ACK))
    if (!policy.ok) throw new EvictionPolicyError(`refusing to start: ${policy.message}`)
    await ensureGroups(w)
    await reclaim(w)
    await runLoop(w)
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
        const cancelDeadline = shutdown.begin(config.WORKER_SHUTDOWN_TIMEOUT_MS)
        log.info({ consumer: name }, 'worker stopping: finishing the batch in hand')
        const tasksStopped = tasks.stop()
        if (loop) {
          const finished = await Promise.race([loop.then(() => true, () => true),
            sleep(config.WORKER_SHUTDOWN_TIMEOUT_MS + config.WORKER_BLOCK_MS, false)])
          // A read stuck on a dead Redis never returns by itself; closing its connection ends it.
          if (!finished) for (const conn of blockingConns) conn.disconnect()
          await loop.catch(() => {})
        }
        // A lifecycle task stuck on a backend does not hold the shutdown past its deadline: it ends with the process.
        const tasksDone = await Promise.race([tasksStopped.then(() => true),
          sleep(Math.max(0, shutdown.deadline - Date.now()), false)])
        if (!tasksDone) log.warn({ consumer: name }, 'lifecycle tasks still running at the shutdown deadline')
        cancelDeadline()
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
