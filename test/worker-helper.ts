/** Helpers for the worker tests: real worker child processes, a Postgres proxy to cut, stream state. */
import type { ChildProcess } from 'node:child_process'
import { setTimeout as sleep } from 'node:timers/promises'
import type postgres from 'postgres'
import { createKeys } from '../src/redis/keys.js'
import type { RedisClient } from '../src/redis/client.js'
import type { Config } from '../src/config.js'
import { claim } from './helper.js'
import { entryArgs, startProcess } from './process.js'
import { trafficProxy } from './tcp-proxy.js'

interface Tap { teardown(fn: () => unknown): void }

interface LogLine { msg: string; level: number; [k: string]: unknown }

export interface WorkerProcess {
  child: ChildProcess
  name: string
  logs: LogLine[]
  output: () => string
  /** Resolves with the first log line matching, waiting up to timeoutMs. */
  waitForLog: (pred: (l: LogLine) => boolean, timeoutMs?: number) => Promise<LogLine>
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

/** Runs the real worker entry point (dist/src/worker/main.js, the build) as a child process. */
export function spawnWorker(t: Tap, env: Record<string, string>, name: string, extra: Record<string,
  string> = {}): WorkerProcess {
  const { child, output, exited } = startProcess(t, entryArgs('src/worker/main'),
    { ...env, LOG_LEVEL: 'info', WORKER_NAME: name, WORKER_METRICS_PORT: '-1', ...extra })
  const logs: LogLine[] = []
  let partial = ''
  const waiters = new Set<() => void>()
  child.stdout!.on('data', (d: Buffer) => {
    const lines = (partial + d.toString()).split('\n')
    partial = lines.pop() ?? ''
    for (const line of lines) {
      try { logs.push(JSON.parse(line) as LogLine) } catch { /* not a log line */ }
    }
    for (const w of waiters) w()
  })
  const waitForLog = (pred: (l: LogLine) => boolean, timeoutMs = 60_000) => new Promise<LogLine>((resolve, reject) => {
    const check = () => {
      const hit = logs.find(pred)
      if (hit) { cleanup(); resolve(hit) }
    }
    const timer = setTimeout(() => { cleanup(); reject(new Error(`worker ${name}: no matching log line within ${timeoutMs} ms; output:\n${output().slice(-4000)}`)) }, timeoutMs)
    const onExit = () => { cleanup(); reject(new Error(`worker ${name} exited; output:\n${output().slice(-4000)}`)) }
    const cleanup = () => { clearTimeout(timer); waiters.delete(check); child.off('exit', onExit) }
    waiters.add(check)
    child.once('exit', onExit)
    check()
  })
  return { child, name, logs, output, waitForLog, exited }
}

export async function startedWorker(t: Tap, env: Record<string, string>, name: string,
  extra: Record<string, string> = {}, startTimeoutMs = 60_000): Promise<WorkerProcess> {
  const w = spawnWorker(t, env, name, extra)
  await w.waitForLog((l) => l.msg === 'worker started', startTimeoutMs)
  return w
}

/** Polls until fn returns a truthy value (no timing is asserted; the timeout only bounds a hang). */
export async function waitUntil<T>(what: string, fn: () => Promise<T>, timeoutMs = 30_000): Promise<T> {
  const end = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const v = await fn()
      if (v) return v
      last = v
    } catch (err) {
      last = err
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what} (last: ${String(last)})`)
    await sleep(100)
  }
}

/**
 * The worker's 'batch persisted' lines once `enough` says they are all there (or after 10 s): a worker logs
 * a batch after its ack, so a drained stream is seen a moment before the last line arrives.
 */
export async function batchLines(workers: WorkerProcess[], enough: (lines: LogLine[]) => boolean): Promise<LogLine[]> {
  const lines = () => workers.flatMap((w) => w.logs.filter((l) => l.msg === 'batch persisted'))
  await waitUntil('the batches logged', async () => enough(lines()), 10_000).catch(() => {})
  return lines()
}

export interface StreamState { length: number; pending: number; byConsumer: Record<string, number> }

/** Total length and pending entries over all partition streams of the test's prefix. */
export async function streamState(redis: RedisClient, config: Config, group = 'persisters'): Promise<StreamState> {
  const keys = createKeys(config.KEY_PREFIX, config.STREAM_PARTITIONS)
  const state: StreamState = { length: 0, pending: 0, byConsumer: {} }
  for (const s of keys.streams()) {
    state.length += await redis.xlen(s)
    let summary: unknown[]
    try {
      summary = (await redis.call('XPENDING', s, group)) as unknown[]
    } catch {
      continue // no group yet
    }
    state.pending += Number(summary[0])
    for (const [consumer, n] of (summary[3] as [string, string][] | null) ?? []) {
      state.byConsumer[consumer] = (state.byConsumer[consumer] ?? 0) + Number(n)
    }
  }
  return state
}

export async function consumers(redis: RedisClient, stream: string, group = 'persisters'): Promise<string[]> {
  const infos = (await redis.call('XINFO', 'CONSUMERS', stream, group)) as unknown[][]
  return infos.map((info) => String(info[info.indexOf('name') + 1]))
}

export async function rowCount(sql: postgres.Sql, campaignId?: string): Promise<number> {
  const [r] = campaignId
    ? await sql`SELECT count(*)::int AS n FROM claims WHERE campaign_id = ${campaignId}`
    : await sql`SELECT count(*)::int AS n FROM claims`
  return r!.n as number
}

/** Fires one claim per user, `concurrency` at a time; returns the status counts. */
export async function claimMany(url: string, campaignId: string, users: string[],
  concurrency = 50): Promise<Record<number, number>> {
  const counts: Record<number, number> = {}
  let next = 0
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < users.length) {
      const u = users[next++]!
      const r = await claim(url, campaignId, u)
      counts[r.status] = (counts[r.status] ?? 0) + 1
    }
  }))
  return counts
}

/** A TCP proxy in front of Postgres that a test can cut (down) and restore (up) on the same port. */
export async function tcpProxy(t: Tap, targetPort: number):
  Promise<{ port: number; up: () => Promise<void>; down: () => Promise<void> }> {
  const proxy = await trafficProxy(t, targetPort)
  return { port: proxy.port, up: proxy.listen, down: proxy.refuse }
}

export async function fetchJson(url: string): Promise<{ status: number; body: any; text: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) })
  const text = await res.text()
  let body: unknown = text
  try { body = JSON.parse(text) } catch { /* text */ }
  return { status: res.status, body, text }
}

/**
 * Sequences answered 201 again after a claim PostgreSQL held (heldIds) had been answered with them: each such
 * sequence's answers as "campaign:sequence user", in answer order (none: every sequence PostgreSQL held
 * was answered once). A sequence answered again after a claim that never reached PostgreSQL is not listed.
 */
export function answeredAgain(won: { id: string; user: string; claimId?: string; sequence?: number }[],
  heldIds: Set<string>): string[][] {
  const bySeq = new Map<string, typeof won>()
  for (const s of won) bySeq.set(`${s.id}:${s.sequence}`, [...(bySeq.get(`${s.id}:${s.sequence}`) ?? []), s])
  return [...bySeq.values()].filter((list) => list.slice(0, -1).some((s) => heldIds.has(s.claimId!)))
    .map((list) => list.map((s) => `${s.id}:${s.sequence} ${s.user}`))
}
