/**
 * Open-loop scenario: claims on the issue path at a constant arrival rate of 25, 50 and 75 % of the rate the
 * same run measured closed-loop (autocannon at --connections), each latency counted from the request's
 * intended send time (bench/open-loop-generator.ts, its own process). Closed-loop load hides queueing: a
 * client that waits for answers slows down with the server. A drop's users do not.
 */
import path from 'node:path'
import { fmtInt } from '../progress.js'
import { spawnNode } from '../processes.js'
import { createCampaign, HUGE_STOCK, type Api, type Env } from '../env.js'

const OPEN_LOOP_LOADS = [25, 50, 75] as const

export interface OpenLoopJob {
  url: string
  /** Requests per second, one every 1/rate s. */
  rate: number
  seconds: number
  auth: { kind: 'jwt'; secret: string } | { kind: 'header'; header: string }
  /** Every request a new user: `${userPrefix}${i}`. */
  userPrefix: string
  /** Sockets the client may open (keep-alive); more than a healthy server ever needs at these rates. */
  maxConnections: number
  /** After the last slot, how long to wait for answers still out (they count as errors after that). */
  drainTimeoutMs: number
}

export interface OpenLoopResult {
  rate: number
  sent: number
  answered: number
  errors: number
  statusCodes: Record<string, number>
  seconds: number
  p50Ms: number
  p99Ms: number
  p999Ms: number
  maxMs: number
  within50MsPct: number
}

export interface OpenLoopFigures extends OpenLoopResult {
  /** Percent of the closed-loop issue-path rate of the same run. */
  loadPct: number
}

type FromGenerator = { type: 'ready' } | { type: 'result'; result: OpenLoopResult } | { type: 'error'; message: string }

/** Runs the three loads one after another on a fresh campaign whose stock exceeds every request. */
export async function runOpenLoop(env: Env, { url }: Api, issueRps: number): Promise<OpenLoopFigures[]> {
  env.progress.step(`open loop: constant arrival rate at ${OPEN_LOOP_LOADS.join(', ')} % of the issue path's ${fmtInt(issueRps)} claims/s, latency from each request's intended send time`)
  const id = await createCampaign(env, url, 'bench open loop', HUGE_STOCK)
  const proc = spawnNode('open-loop', 'bench/open-loop-generator',
    { env: {}, logFile: path.join(env.logDir, 'open-loop.log'), ipc: true })
  const messages: FromGenerator[] = []
  let wake: (() => void) | null = null
  proc.child.on('message', (m: FromGenerator) => { messages.push(m); wake?.() })
  proc.child.on('exit', () => wake?.())
  const next = async (): Promise<FromGenerator> => {
    while (messages.length === 0) {
      if (proc.child.exitCode !== null) throw new Error(`open-loop generator exited (${proc.child.exitCode}); see ${env.logDir}`)
      await new Promise<void>((r) => { wake = r })
      wake = null
    }
    return messages.shift()!
  }
  try {
    if ((await next()).type !== 'ready') throw new Error('open-loop generator: expected ready')
    const out: OpenLoopFigures[] = []
    for (const loadPct of OPEN_LOOP_LOADS) {
      const rate = Math.max(1, Math.round((issueRps * loadPct) / 100))
      env.progress.step(`  open loop ${loadPct} %: ${fmtInt(rate)} claims/s for ${env.opts.duration} s`)
      const job: OpenLoopJob = {
        url: `${url}/v1/campaigns/${id}/claims`, rate, seconds: env.opts.duration,
        auth: env.opts.auth === 'jwt' ? { kind: 'jwt', secret: env.jwtSecret } : { kind: 'header', header: env.userHeader },
        userPrefix: `${env.runId}-open${loadPct}-`, maxConnections: 1_000, drainTimeoutMs: 30_000,
      }
      proc.child.send({ type: 'run', job })
      const m = await next()
      if (m.type !== 'result') throw new Error(`open-loop generator: ${m.type === 'error' ? m.message : m.type}`)
      const r = m.result
      env.progress.step(`  open loop ${loadPct} %: p50 ${r.p50Ms.toFixed(2)} ms, p99 ${r.p99Ms.toFixed(2)} ms, p99.9 ${r.p999Ms.toFixed(2)} ms, ${r.within50MsPct.toFixed(2)} % within 50 ms; ${Object.entries(r.statusCodes).map(([c, n]) => `${fmtInt(n)} x ${c}`).join(', ')}${r.errors ? `, ${r.errors} errors` : ''}`)
      out.push({ loadPct, ...r })
    }
    return out
  } finally {
    if (proc.child.connected) proc.child.send({ type: 'exit' })
    await proc.stop(3_000)
  }
}
