import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { FastifyBaseLogger } from 'fastify'
import type { Keys } from '../redis/keys.js'
import { withTimeout } from '../timeout.js'
import { collectProcessMetrics } from './process-metrics.js'
import type { RedisClient } from '../redis/client.js'
import { flatRecord } from '../redis/codec.js'

/** Outcomes of the claim script, plus `replayed` (an Idempotency-Key answer) and `error` (the script failed). */
const CLAIM_OUTCOMES = ['issued', 'at_limit', 'sold_out', 'not_open', 'closed', 'unavailable', 'replayed',
  'rate_limited', 'not_admitted', 'too_late', 'recovering', 'error'] as const
export type ClaimMetricOutcome = (typeof CLAIM_OUTCOMES)[number]

// Claims answer in about a millisecond when healthy; the upper buckets catch Redis stalls and queueing.
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]

/**
 * The API's Prometheus registry. One registry per app (not prom-client's global one), so tests that build
 * several apps in one process do not collide. The hot path only increments counters and observes
 * histograms; stream gauges are read from Redis when Prometheus scrapes.
 */
export function createApiMetrics(redis: RedisClient, keys: Keys, log: FastifyBaseLogger, timeoutMs: number) {
  const registry = new Registry()
  // Default process metrics include nodejs_eventloop_lag_seconds and its percentiles (monitorEventLoopDelay).
  collectProcessMetrics(registry)

  const claims = new Counter({
    name: 'fcfs_claims_total',
    help: 'Claim attempts that reached the claim script, by outcome',
    labelNames: ['outcome'] as const,
    registers: [registry],
  })
  // Children resolved once: a labelled inc() otherwise hashes the label set on every claim.
  const claimBy = Object.fromEntries(CLAIM_OUTCOMES.map((o) => [o,
    claims.labels(o)])) as Record<ClaimMetricOutcome, Counter.Internal>
  // Every outcome is exported from the start, so rate() and alerts see 0 rather than a missing series.
  for (const o of CLAIM_OUTCOMES) claims.inc({ outcome: o }, 0)

  const soldOutLocal = new Counter({
    name: 'fcfs_claims_sold_out_local_total',
    help: 'Claims answered 410 SOLD_OUT from the instance\'s sold-out cache, without Redis (not in fcfs_claims_total)',
    registers: [registry],
  })

  const claimDuration = new Histogram({
    name: 'fcfs_claim_request_duration_seconds',
    help: 'Claim requests from arrival to response (rate limiting and authentication included), by HTTP status',
    labelNames: ['status'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  })
  const scriptDuration = new Histogram({
    name: 'fcfs_redis_script_duration_seconds',
    help: 'Round trip of a Lua script call to Redis, by script',
    labelNames: ['script'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  })
  const claimScript = scriptDuration.labels('claim')
  scriptDuration.zero({ script: 'claim' })

  // Stream state is the same whoever reads it, so one role exports it (the API; aggregate instances with
  // max, not sum). The workers export what is theirs: fcfs_stream_pending per consumer.
  const streamBacklog = new Gauge({
    name: 'fcfs_stream_backlog',
    help: 'Entries in each claims stream (XLEN): issued in Redis and not yet persisted (workers delete what they ' +
      'ack); same on every API instance, aggregate with max',
    labelNames: ['stream'] as const,
    registers: [registry],
    collect: () => collectOnce(),
  })
  const streamLag = new Gauge({
    name: 'fcfs_stream_lag',
    help: 'Entries not yet delivered to a consumer group (what the workers still have to read), per stream and ' +
      'group; same on every API instance, aggregate with max',
    labelNames: ['stream', 'group'] as const,
    registers: [registry],
    collect: () => collectOnce(),
  })
  const scrapeErrors = new Counter({
    name: 'fcfs_metrics_collect_errors_total',
    help: 'Scrapes whose Redis stream statistics could not be read, wholly or for one stream ' +
      '(Redis down or slow, or a command the ACL user may not run)',
    registers: [registry],
    // Joins the scrape's one read, so the scrape that met a refusal already counts it.
    collect: () => collectOnce(),
  })
  // Up/down as the last readiness probe or scrape saw it: PostgreSQL down is degraded, not unready.
  let probeBackends: (() => Promise<void>) | null = null
  const backendUp = new Gauge({
    name: 'fcfs_backend_up',
    help: '1 when the backend answered the last readiness probe or scrape, 0 when it did not ' +
      '(postgres down = API degraded: admin routes 503, claims go on)',
    labelNames: ['backend'] as const,
    registers: [registry],
    collect: async () => { await probeBackends?.() },
  })

  const cancellations = new Counter({
    name: 'fcfs_claim_cancellations_total',
    help: 'Claims cancelled (each gave one unit back to the stock), by who cancelled: user or admin',
    labelNames: ['by'] as const,
    registers: [registry],
  })
  const returnedUnits = new Counter({
    name: 'fcfs_stock_returned_total',
    help: 'Units given back to a campaign\'s stock through this API instance, by reason: cancel, or expire ' +
      '(a hold found expired by a cancel or a confirm; the worker counts its sweeps)',
    labelNames: ['reason'] as const,
    registers: [registry],
  })
  const confirmations = new Counter({
    name: 'fcfs_hold_confirmations_total',
    help: 'Holds confirmed before they expired',
    registers: [registry],
  })
  for (const by of ['user', 'admin']) cancellations.inc({ by }, 0)
  for (const reason of ['cancel', 'expire']) returnedUnits.inc({ reason }, 0)

  // Per-stream commands, concurrent: in flight together on each node's connection, one round trip per node (a
  // single Redis auto-pipelines them into one write; a cluster sends each on its own), with no multi-slot
  // pipeline. Done once per scrape.
  async function collectStreams(): Promise<void> {
    streamBacklog.reset()
    streamLag.reset()
    const streams = keys.streams()
    const settled = <T>(p: Promise<T>): Promise<[Error | null, T | undefined]> =>
      p.then((v) => [null, v], (err: Error) => [err, undefined])
    let replies: [Error | null, unknown][]
    try {
      const reads = streams.flatMap((s) => [settled(redis.xlen(s)), settled(redis.xinfo('GROUPS', s))])
      replies = await withTimeout(Promise.all(reads), timeoutMs, 'stream statistics')
    } catch (err) {
      scrapeErrors.inc()
      log.warn({ err }, 'metrics: could not read stream statistics')
      return
    }
    // A refused command (NOPERM) must not look like an empty stream: count it and say which.
    const failures: string[] = []
    streams.forEach((stream, i) => {
      const [lenErr, len] = replies[i * 2]!
      const [groupsErr, groups] = replies[i * 2 + 1]!
      if (groupsErr && !/^ERR no such key/.test(groupsErr.message)) failures.push(`XINFO GROUPS ${stream}: ${groupsErr.message}`)
      if (lenErr) { failures.push(`XLEN ${stream}: ${lenErr.message}`); return }
      streamBacklog.set({ stream }, Number(len))
      if (groupsErr || !Array.isArray(groups)) return // a stream that does not exist yet has no groups
      for (const g of groups as unknown[][]) {
        const info = flatRecord(g)
        const group = String(info.name)
        // lag is null when Redis cannot tell (after XDEL/XTRIM of undelivered entries); Redis < 7 lacks it.
        if (info.lag !== undefined && info.lag !== null) streamLag.set({ stream, group }, Number(info.lag))
      }
    })
    if (failures.length) {
      scrapeErrors.inc()
      log.error({ errors: failures.slice(0, 4), failed: failures.length }, 'metrics: stream statistics refused')
    }
  }

  // prom-client collects all gauges of a scrape concurrently: the stream gauges share one read.
  let inflight: Promise<void> | null = null
  function collectOnce(): Promise<void> {
    inflight ??= collectStreams().finally(() => { inflight = null })
    return inflight
  }

  const durationByStatus = new Map<number, ReturnType<typeof claimDuration.labels>>()
  return {
    registry,
    /** One claim outcome: a counter increment, nothing that touches Redis. */
    countClaim: (outcome: ClaimMetricOutcome) => claimBy[outcome].inc(),
    /** A 410 answered from the sold-out cache. */
    countSoldOutLocal: () => soldOutLocal.inc(),
    // The labelled child per status, looked up once: observe({ status }) hashes the label object on every call.
    observeClaimRequest: (status: number, seconds: number) => {
      let child = durationByStatus.get(status)
      if (!child) durationByStatus.set(status, child = claimDuration.labels(String(status)))
      child.observe(seconds)
    },
    setBackendUp: (backend: 'postgres' | 'redis', up: boolean) => backendUp.set({ backend }, up ? 1 : 0),
    /** What a scrape runs to refresh fcfs_backend_up (set by the readiness plugin). */
    setBackendProbe: (fn: () => Promise<void>) => { probeBackends = fn },
    /** A cancellation that gave its unit back (not a replay). */
    countCancellation: (by: 'user' | 'admin') => { cancellations.inc({ by }); returnedUnits.inc({ reason: 'cancel' }) },
    /** A hold that a cancel or a confirm found expired and whose unit it gave back. */
    countExpiredHold: () => returnedUnits.inc({ reason: 'expire' }),
    countConfirmation: () => confirmations.inc(),
    /** Times one claim script call; returns the stop function. */
    startClaimScript: () => claimScript.startTimer(),
    /** This instance's claim answers so far by HTTP status (the live feed derives rates from it, off the hot path). */
    async answersByStatus(): Promise<Map<number, number>> {
      const out = new Map<number, number>()
      for (const v of (await claimDuration.get()).values) {
        if (v.metricName === 'fcfs_claim_request_duration_seconds_count') out.set(Number(v.labels.status), v.value)
      }
      return out
    },
    async render(): Promise<{ contentType: string; body: string }> {
      return { contentType: registry.contentType, body: await registry.metrics() }
    },
  }
}

export type ApiMetrics = ReturnType<typeof createApiMetrics>
