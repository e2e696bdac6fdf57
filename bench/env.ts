/**
 * What every bench scenario shares: the run's environment (Env), starting a server process, a load job,
 * measuring it, and creating a campaign. Scenario files (bench/scenarios/) import this; it imports none of
 * them (no import cycle).
 */
import path from 'node:path'
import type postgres from 'postgres'
import type { Redis } from 'ioredis'
import type { Config } from '../src/config.js'
import type { Keys } from '../src/redis/keys.js'
import type { LoadClient } from './load-client.js'
import type { LoadJob, LoadResult } from './load-protocol.js'
import { freePort, spawnNode, waitForHttp, type Child } from './processes.js'
import { fmtInt, type Progress } from './progress.js'
import { cpuPerRequest, sampleCpu } from './cpu-usage.js'
import type { BenchOptions } from './options.js'

export const HUGE_STOCK = 100_000_000

export interface HttpFigures {
  rps: number
  /** CPU microseconds per request spent by each process (from /proc; null elsewhere). */
  cpuUsPerRequest: Record<string, number | null> | null
  requests: number
  seconds: number
  p50Ms: number
  p95Ms: number
  p99Ms: number
  maxMs: number
  statusCodes: Record<string, number>
  errors: number
}

export interface Env {
  opts: BenchOptions
  progress: Progress
  config: Config
  runId: string
  dbUrl: string
  prefix: string
  keys: Keys
  redis: Redis
  sql: postgres.Sql
  load: LoadClient
  logDir: string
  adminToken: string
  jwtSecret: string
  userHeader: string
  /** redis-server's pid when it runs on this machine (for its CPU per request), else null. */
  redisPid: number | null
  /** Stops the local cluster of --cluster, if one is running (destroyEnv calls it). */
  stopCluster: (() => Promise<void>) | null
}

export const figures = (r: LoadResult, cpu: Record<string, number | null> | null = null): HttpFigures => ({
  rps: r.rps, cpuUsPerRequest: cpu, requests: r.requests, seconds: r.seconds,
  p50Ms: r.latencyMs.p50, p95Ms: r.latencyMs.p95, p99Ms: r.latencyMs.p99, maxMs: r.latencyMs.max,
  statusCodes: r.statusCodes, errors: r.errors + r.timeouts,
})

/** Environment shared by every server process of the run: a private database and key prefix, limiters off. */
export function serverEnv(env: Env, port: number): Record<string, string> {
  return {
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    PORT: String(port),
    REDIS_URL: env.config.REDIS_URL,
    DATABASE_URL: env.dbUrl,
    KEY_PREFIX: env.prefix,
    STREAM_PARTITIONS: String(env.config.STREAM_PARTITIONS),
    ADMIN_TOKEN: env.adminToken,
    LOG_LEVEL: env.config.LOG_LEVEL,
    // The bench measures the claim path, not the limiters: many users from one address would trip them.
    RATE_LIMIT_IP_MAX: '0',
    // The per-user limit stays on (its default): it is counted inside the claim's one script call.
    ...(env.opts.auth === 'jwt'
      ? { JWT_SECRET: env.jwtSecret, TRUSTED_USER_HEADER: '' }
      : { TRUSTED_USER_HEADER: env.userHeader, JWT_SECRET: '' }),
  }
}

export async function startServer(env: Env, name: string, entry: string,
  nodeArgs: string[] = [], extraEnv: Record<string, string> = {}): Promise<{ proc: Child; url: string }> {
  const port = await freePort()
  const proc = spawnNode(name, entry, { env: { ...serverEnv(env, port), ...extraEnv },
    logFile: path.join(env.logDir, `${name}.log`), nodeArgs })
  const url = `http://127.0.0.1:${port}`
  await waitForHttp(`${url}/`, proc)
  return { proc, url }
}

/** --cpu-prof: each server process writes its profile into its own directory when it exits. */
export const profileDir = (env: Env, name: string) => path.resolve(env.opts.cpuProf!, name)
export const profileArgs = (env: Env, name: string) =>
  (env.opts.cpuProf ? ['--cpu-prof', '--cpu-prof-dir', profileDir(env, name)] : [])

/** The API server the HTTP scenarios share (profiled with --cpu-prof). */
export async function startApi(env: Env): Promise<Api> {
  return startServer(env, 'api', 'src/server', profileArgs(env, 'api'))
}

export function job(env: Env, url: string, userPrefix: string, extra: Partial<LoadJob> = {}): LoadJob {
  return {
    url, method: 'POST', connections: env.opts.connections, timeoutS: 30, perUser: 1,
    auth: env.opts.auth === 'jwt' ? { kind: 'jwt', secret: env.jwtSecret } : { kind: 'header', header: env.userHeader },
    userPrefix: `${env.runId}-${userPrefix}-`,
    ...extra,
  }
}

/** Warm-up (unmeasured, its own users), then the measured run, with the CPU each process spent on it. */
export async function measure(env: Env, label: string, base: LoadJob, server: Child,
  redisPid: number | null = env.redisPid): Promise<HttpFigures> {
  const { warmup, duration } = env.opts
  if (warmup > 0) {
    env.progress.step(`  ${label}: warm-up ${warmup} s`)
    await env.load.run({ ...base, duration: warmup, userPrefix: `${base.userPrefix}w` })
  }
  env.progress.step(`  ${label}: measuring ${duration} s at ${base.connections} connections`)
  const pids = { server: server.child.pid, redis: redisPid, loadGenerator: env.load.pid }
  const before = sampleCpu(pids)
  const r = await env.load.run({ ...base, duration }, (s, rps) => env.progress.tick(label, s, duration, rps))
  const cpu = cpuPerRequest(before, sampleCpu(pids), r.requests)
  env.progress.done()
  const cpuLine = Object.values(cpu).some((v) => v !== null)
    ? `; CPU µs/request: ${Object.entries(cpu).map(([k, v]) => `${k} ${v === null ? '?' : v.toFixed(0)}`).join(', ')}` : ''
  env.progress.step(`  ${label}: ${fmtInt(r.rps)} req/s, p99 ${r.latencyMs.p99.toFixed(1)} ms, ${statusLine(r.statusCodes)}${r.errors + r.timeouts ? `, ${r.errors + r.timeouts} errors` : ''}${cpuLine}`)
  return figures(r, cpu)
}

/** A fixed number of requests as fast as they come (the burst). */
export async function fire(env: Env, label: string, base: LoadJob, amount: number): Promise<LoadResult> {
  env.progress.step(`  ${label}: ${fmtInt(amount)} requests at ${base.connections} connections`)
  // autocannon refuses more connections than requests.
  const r = await env.load.run({ ...base, amount, connections: Math.min(base.connections, amount) },
    (s, rps) => env.progress.tick(label, s, null, rps))
  env.progress.done()
  env.progress.step(`  ${label}: ${r.seconds.toFixed(2)} s, p99 ${r.latencyMs.p99.toFixed(1)} ms, ${statusLine(r.statusCodes)}${r.errors + r.timeouts ? `, ${r.errors + r.timeouts} errors` : ''}`)
  return r
}

export const statusLine = (codes: Record<string, number>) =>
  Object.entries(codes).sort().map(([c, n]) => `${fmtInt(n)} x ${c}`).join(', ') || 'no answers'

async function admin(env: Env, url: string, pathname: string, body: unknown): Promise<any> {
  const res = await fetch(`${url}${pathname}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${env.adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
  const json = await res.json()
  if (!res.ok) throw new Error(`${pathname} answered ${res.status}: ${JSON.stringify(json)}`)
  return json
}

export const createCampaign = async (env: Env, url: string, name: string, stock: number): Promise<string> =>
  (await admin(env, url, '/admin/campaigns', { name, stock })).id as string

export interface Api { proc: Child; url: string }
