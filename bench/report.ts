import os from 'node:os'
import { createRequire } from 'node:module'
import type { Redis } from 'ioredis'
import type postgres from 'postgres'
import type { BenchResults } from './results.js'
import type { HttpFigures } from './env.js'
import type { WrkFigures } from './wrk.js'
import type { BenchOptions } from './options.js'
import type { OpenLoopFigures } from './scenarios/open-loop.js'
import { fmtInt } from './progress.js'

export interface Machine {
  cpus: number
  model: string
  node: string
  redis: string
  postgres: string
  loadGenerator: string
  os: string
  loadAverageBefore: number[]
  loadAverageAfter: number[] | null
}

export async function describeMachine(redis: Redis, sql: postgres.Sql, opts: BenchOptions): Promise<Machine> {
  const require = createRequire(import.meta.url)
  const ac = (require('autocannon/package.json') as { version: string }).version
  const info = await redis.info('server')
  const [pg] = await sql`SHOW server_version`
  return {
    cpus: os.cpus().length,
    model: os.cpus()[0]?.model.trim() ?? 'unknown',
    node: process.version,
    redis: /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown',
    postgres: String(pg!.server_version),
    loadGenerator: `autocannon ${ac} (programmatic API, own process, ${opts.connections} connections, no pipelining, ${opts.auth === 'jwt' ? 'a new HS256 JWT' : 'a new x-user-id header'} per request)`,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    loadAverageBefore: os.loadavg().map((n) => Math.round(n * 100) / 100),
    loadAverageAfter: null,
  }
}

const ratio = (a: number | undefined | null, b: number | undefined | null) => (a != null && b ? a / b : null)

/** An open-loop run as the JSON reports it. */
const openLoopFigures = (o: OpenLoopFigures) => ({ loadPct: o.loadPct, rate: o.rate, p50Ms: o.p50Ms, p99Ms: o.p99Ms,
  p999Ms: o.p999Ms, within50MsPct: o.within50MsPct, maxMs: o.maxMs, sent: o.sent, errors: o.errors,
  statusCodes: o.statusCodes })
type OpenLoopSummary = ReturnType<typeof openLoopFigures>

export function summarize(results: BenchResults, machine: Machine, opts: BenchOptions, command: string) {
  const c = results.ceiling?.rps
  const a = results.baselines?.dbLock.rps
  return {
    command,
    options: { users: opts.users, stock: opts.stock, connections: opts.connections, duration: opts.duration,
      warmup: opts.warmup, backlog: opts.backlog, burstWorkers: opts.burstWorkers, auth: opts.auth },
    date: new Date().toISOString(),
    machine,
    ceiling: results.ceiling,
    issue: results.issue,
    burst: results.burst,
    soldOut: results.soldOut,
    persistence: results.persistence,
    wrk: results.wrk,
    baselines: results.baselines,
    ratios: {
      issueToCeiling: ratio(results.issue?.rps, c),
      soldOutToCeiling: ratio(results.soldOut?.rps, c),
      burstToCeiling: ratio(results.burst?.rps, c),
      issueToDbLock: ratio(results.issue?.rps, a),
      issueToRedisLock: ratio(results.issue?.rps, results.baselines?.redisLock.rps),
      issueToTwoStep: ratio(results.issue?.rps, results.baselines?.twoStep.rps),
      wrkIssueToCeiling: ratio(results.wrk?.issue?.rps, results.wrk?.ceiling?.rps),
      wrkSoldOutToCeiling: ratio(results.wrk?.soldOut?.rps, results.wrk?.ceiling?.rps),
    },
    redisRoundTripsPerClaim: results.issue?.redis?.roundTripsPerClaim ?? null,
    cluster: results.cluster ?? null,
    // Loss of a campaign's live state to its first 201, and the repair as the recoverer recorded it.
    recovery: results.recovery ?? null,
    // Constant arrival rate at 25/50/75 % of issue.rps, latency from each request's intended send time.
    openLoop: results.openLoop?.map(openLoopFigures) ?? null,
    // The bare route at the same rates, each right after its claims run: the machine's and generator's own tail.
    openLoopCeiling: results.openLoopCeiling?.map(openLoopFigures) ?? null,
    clusterRatios: results.cluster ? {
      issueClusterToSingle: ratio(results.cluster.issue.rps, results.issue?.rps),
      slotClusterToSingle: ratio(results.cluster.slot.cluster.claimsPerSec, results.cluster.slot.single.claimsPerSec),
      issueClusterToSlotCeiling: ratio(results.cluster.issue.rps, results.cluster.slot.cluster.claimsPerSec),
      // CLAIM_DURABILITY=replica against none, same cluster, same run (targets: >= 0.85x, p99 <= +3 ms).
      replicaToNone: ratio(results.cluster.issueReplica.rps, results.cluster.issue.rps),
      replicaP50DeltaMs: results.cluster.issueReplica.p50Ms - results.cluster.issue.p50Ms,
      replicaP99DeltaMs: results.cluster.issueReplica.p99Ms - results.cluster.issue.p99Ms,
    } : null,
  }
}

export type Summary = ReturnType<typeof summarize>

const ms = (v: number | undefined) => (v === undefined ? '' : v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : fmtInt(v))
const cpu = (f: HttpFigures) => {
  const u = f.cpuUsPerRequest
  if (!u || Object.values(u).every((v) => v === null)) return ''
  return [u.server, u.redis, u.loadGenerator].map((v) => (v == null ? '?' : v.toFixed(0))).join(' / ')
}
const x = (v: number | null) => (v === null ? '' : v >= 10 ? `${v.toFixed(1)}x` : `${v.toFixed(2)}x`)

/** The one table printed at the end. */
export function renderTable(s: Summary): string {
  const c = s.ceiling?.rps ?? null
  const a = s.baselines?.dbLock.rps ?? null
  const rows: string[][] = []
  const http = (name: string, f: HttpFigures | null | undefined, unit: string, note = '') => {
    if (!f) return
    rows.push([name, `${fmtInt(f.rps)} ${unit}`, ms(f.p50Ms), ms(f.p95Ms), ms(f.p99Ms), ms(f.maxMs), cpu(f),
      x(ratio(f.rps, c)), x(ratio(f.rps, a)), note])
  }
  http('ceiling (bare route)', s.ceiling, 'req/s')
  const rt = s.issue?.redis
  const trips = rt ? `Redis per claim: ${Object.entries(rt.perClaim).map(([k, v]) => `${v.toFixed(2)} ${k.toUpperCase()}`).join(' + ') || 'nothing'} (${rt.claims} claims under MONITOR), ${rt.insideScriptPerClaim.toFixed(1)} keyed commands inside the script` : ''
  http('issue path', s.issue, 'claims/s', [s.issue?.errors ? `${s.issue.errors} errors` : '', trips].filter(Boolean).join('; '))
  if (s.burst) {
    const b = s.burst
    const codes = Object.entries(b.statusCodes).map(([k, v]) => `${fmtInt(v)}x${k}`).join(' ')
    const sell = b.sellOutSeconds !== null ? `sold out in ${b.sellOutSeconds.toFixed(2)} s, ` : ''
    http(`burst (S=${fmtInt(b.stock)}, N=${fmtInt(b.users)})`, b, 'req/s',
      `${sell}all ${b.seconds.toFixed(2)} s; ${codes}; ${b.correct ? 'correct' : 'INCORRECT'}`)
  }
  const openLoopRow = (name: string, unit: string, o: OpenLoopSummary) =>
    rows.push([`${name} ${o.loadPct} % of issue`, `${fmtInt(o.rate)} ${unit}`, ms(o.p50Ms), '', ms(o.p99Ms),
      ms(o.maxMs), '', '', '', [`p99.9 ${ms(o.p999Ms)} ms, ${o.within50MsPct.toFixed(2)} % within 50 ms (from the intended send time)`,
        o.errors ? `${o.errors} errors` : ''].filter(Boolean).join('; ')])
  for (const o of s.openLoop ?? []) openLoopRow('open loop', 'claims/s', o)
  for (const o of s.openLoopCeiling ?? []) openLoopRow('open loop, bare route,', 'req/s', o)
  http('sold out', s.soldOut, 'req/s')
  if (s.persistence) {
    const p = s.persistence
    const dash = ['', '', '', '', '', '', '']
    if (p.drainMs !== null) rows.push(['persistence: burst', `last row +${fmtInt(p.drainMs)} ms`, ...dash,
      `after the last 201, ${p.burstWorkers} worker(s)`])
    if (p.rowsPerSecOneWorker !== null) rows.push(['persistence: 1 worker', `${fmtInt(p.rowsPerSecOneWorker)} rows/s`,
      ...dash, `backlog of ${fmtInt(p.backlog)}`])
    if (p.rowsPerSecTwoWorkers !== null) rows.push(['persistence: 2 workers',
      `${fmtInt(p.rowsPerSecTwoWorkers)} rows/s`, ...dash, `backlog of ${fmtInt(p.backlog)}`])
    for (const n of p.notes) rows.push(['persistence', '', ...dash, n])
  }
  if (s.wrk?.ceiling) {
    // Ratios to wrk's own ceiling (same generator, same run); the x (a) column stays autocannon's.
    const w = s.wrk
    const wc = w.ceiling!.rps
    const row = (name: string, f: WrkFigures | null) => {
      if (!f) return
      rows.push([name, `${fmtInt(f.rps)} req/s`, ms(f.p50Ms), ms(f.p95Ms), ms(f.p99Ms), ms(f.maxMs), '',
        x(ratio(f.rps, wc)), '', [`${w.version}, x-user-id header`, f.non2xx ? `${fmtInt(f.non2xx)} non-2xx` : '',
          f.errors ? `${f.errors} errors` : ''].filter(Boolean).join('; ')])
    }
    row('wrk: ceiling', w.ceiling)
    row('wrk: issue path', w.issue)
    row('wrk: sold out', w.soldOut)
  } else if (s.wrk) {
    rows.push(['wrk', '', '', '', '', '', '', '', '', 'not installed: skipped'])
  }
  if (s.baselines) {
    const bl = s.baselines
    http('(a) db lock FOR UPDATE', bl.dbLock, 'claims/s')
    const rb = bl.redisLock.burst
    http('(b) redis lock', bl.redisLock, 'claims/s',
      `burst: ${fmtInt(rb.issued)} issued, oversold ${rb.oversold}, double ${rb.doubleIssued}`)
    const tb = bl.twoStep.burst
    const td = bl.twoStep.doubleClick
    http('(c) INCR + set check', bl.twoStep, 'claims/s',
      `burst: oversold ${tb.oversold}, double ${tb.doubleIssued}; double-click burst: oversold ${td.oversold}, double ${td.doubleIssued}`)
  }
  for (const r of s.recovery ?? []) {
    rows.push([`recovery: ${fmtInt(r.claims)} claims, ${r.loss}`, `fenced ${fmtInt(r.fencedMs)} ms`, '', '', '', '', '',
      '', '', `repair ${fmtInt(r.repairMs)} ms (${r.reason}); ${r.recovering} x 503 RECOVERING; resumed at sequence ${r.resumedAt}`])
  }
  if (s.cluster && s.clusterRatios) {
    const cl = s.cluster
    const r = s.clusterRatios
    http(`issue path, cluster (${cl.masters}+${cl.masters * cl.replicasPerMaster})`, cl.issue, 'claims/s',
      `one campaign; ${x(r.issueClusterToSingle) || '?'} single-node issue path`)
    const sign = (v: number) => `${v >= 0 ? '+' : ''}${v.toFixed(2)}`
    http('issue path, cluster, CLAIM_DURABILITY=replica', cl.issueReplica, 'claims/s',
      `${x(r.replicaToNone) || '?'} none; p50 ${sign(r.replicaP50DeltaMs)} ms, p99 ${sign(r.replicaP99DeltaMs)} ms ` +
      '(targets >= 0.85x, p99 <= +3 ms)')
    const dash = ['', '', '', '']
    const slot = (name: string, f: typeof cl.slot.single, note: string) => rows.push([name,
      `${fmtInt(f.claimsPerSec)} claims/s`, ...dash,
      f.redisCpuUsPerClaim === null ? '' : `- / ${f.redisCpuUsPerClaim.toFixed(1)} / -`, '', '', note])
    slot('one slot: script only, single', cl.slot.single, 'claim.lua alone, no HTTP, one campaign')
    slot('one slot: script only, cluster', cl.slot.cluster,
      `${x(r.slotClusterToSingle) || '?'} single; the API on the cluster reaches ${x(r.issueClusterToSlotCeiling) || '?'} of it`)
  }
  const head = ['scenario', 'rate', 'p50 ms', 'p95 ms', 'p99 ms', 'max ms', 'CPU µs/req srv / redis / load',
    'x ceiling', 'x (a)', 'notes']
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (r: string[]) => `| ${r.map((v, i) => (i === 0 || i === 9 ? v.padEnd(widths[i]!) : v.padStart(widths[i]!))).join(' | ')} |`
  const m = s.machine
  return [
    line(head),
    `|${widths.map((w, i) => (i === 0 || i === 9 ? `:${'-'.repeat(w + 1)}` : `${'-'.repeat(w + 1)}:`)).join('|')}|`,
    ...rows.map(line),
    '',
    `machine: ${m.cpus} x ${m.model}, ${m.os}; node ${m.node}, Redis ${m.redis}, PostgreSQL ${m.postgres}; load average before ${m.loadAverageBefore.join(' ')}${m.loadAverageAfter ? `, after ${m.loadAverageAfter.join(' ')}` : ''}`,
    `load generator: ${m.loadGenerator}`,
    `command: ${s.command}`,
  ].join('\n')
}
