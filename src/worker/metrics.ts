import Fastify, { type FastifyInstance } from 'fastify'
import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { Logger } from 'pino'
import { collectProcessMetrics } from '../ops/process-metrics.js'
import { withTimeout } from '../timeout.js'

/** The worker's own registry (never prom-client's global one, so tests and embedders can run several). */
export function createWorkerMetrics(group: string, consumer: string, sources: {
  ownPending: () => Promise<{ stream: string; pending: number }[]>
  unresolvedFailures: () => Promise<number>
}) {
  const register = new Registry()
  collectProcessMetrics(register)
  const batchSize = new Histogram({
    name: 'fcfs_worker_batch_size', help: 'Entries per batch handled', registers: [register],
    buckets: [1, 10, 50, 100, 250, 500, 1000, 2000, 5000, 10000, 20000],
  })
  const insertSeconds = new Histogram({
    name: 'fcfs_worker_insert_seconds', help: 'Time to persist one batch (insert and commit)', registers: [register],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
  })
  const persisted = new Counter({ name: 'fcfs_worker_claims_persisted_total',
    help: 'Claims rows inserted by this worker', registers: [register] })
  const failed = new Counter({ name: 'fcfs_worker_failed_total', help: 'Entries this worker moved to failed_claims',
    registers: [register] })
  const holdsExpired = new Counter({ name: 'fcfs_holds_expired_total',
    help: 'Holds this worker\'s sweep expired (each gave one unit back to its campaign\'s stock)',
    registers: [register] })
  const archived = new Counter({ name: 'fcfs_campaigns_archived_total',
    help: 'Campaigns this worker archived (ARCHIVE_AFTER_S)', registers: [register] })
  // Gauges read live state when scraped; a failing source leaves the previous values.
  const read = async <T>(f: () => Promise<T>): Promise<T | undefined> => {
    try { return await withTimeout(f(), 800, 'metric source') } catch { return undefined }
  }
  // Only this consumer's share, so summing over workers gives the group's pending count without double
  // counting (the stream backlog and lag are the same for everyone: the API exports those).
  new Gauge({
    name: 'fcfs_stream_pending',
    help: 'Entries delivered to this worker (consumer) and not yet acked; sum over workers for the group',
    labelNames: ['stream', 'group', 'consumer'], registers: [register],
    async collect() {
      const rows = await read(sources.ownPending)
      for (const r of rows ?? []) this.set({ stream: r.stream, group, consumer }, r.pending)
    },
  })
  new Gauge({
    name: 'fcfs_failed_claims',
    help: 'Unresolved rows in failed_claims (dead letters); same on every worker, aggregate with max',
    registers: [register],
    async collect() {
      const n = await read(sources.unresolvedFailures)
      if (n !== undefined) this.set(n)
    },
  })
  return { register, batchSize, insertSeconds, persisted, failed, holdsExpired, archived }
}

export type WorkerMetrics = ReturnType<typeof createWorkerMetrics>

/** A tiny listener for probes and scrapes, apart from the work loop. */
/** The metrics port asked for explicitly is taken: the message says what to do. */
export class MetricsPortInUse extends Error { override name = 'MetricsPortInUse' }

export async function startMetricsServer(opts: {
  host: string
  port: number
  register: Registry
  ready: () => Promise<{ redis: boolean; postgres: boolean }>
  log: Logger
  /** When the port is taken, listen on any free port instead (and say which) rather than fail. */
  orAnyFreePort?: boolean
}): Promise<{ server: FastifyInstance; port: number }> {
  const server = Fastify({ logger: false })
  server.get('/healthz', async () => ({ status: 'ok' }))
  server.get('/readyz', async (_req, reply) => {
    const checks = await opts.ready()
    const ok = checks.redis && checks.postgres
    return reply.code(ok ? 200 : 503).send({ status: ok ? 'ready' : 'unavailable', ...checks })
  })
  server.get('/metrics', async (_req, reply) => {
    const body = await opts.register.metrics()
    return reply.type(opts.register.contentType).send(body)
  })
  let fellBack = false
  try {
    await server.listen({ host: opts.host, port: opts.port })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err
    if (!opts.orAnyFreePort) {
      await server.close()
      throw new MetricsPortInUse(`WORKER_METRICS_PORT ${opts.port} is in use on ${opts.host} (another worker on ` +
        'this host?): give each worker its own port, 0 for any free port, or -1 for no metrics listener')
    }
    await server.listen({ host: opts.host, port: 0 })
    fellBack = true
  }
  const addr = server.server.address()
  const port = addr && typeof addr !== 'string' ? addr.port : opts.port
  if (fellBack) {
    opts.log.warn({ host: opts.host, port, taken: opts.port }, `worker metrics port ${opts.port} is in use (another ` +
      `worker on this host?): listening on ${port} instead; set WORKER_METRICS_PORT to choose one`)
  } else opts.log.info({ host: opts.host, port }, 'worker metrics listening')
  return { server, port }
}
