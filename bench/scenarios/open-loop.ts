/**
 * Open-loop scenario: claims on the issue path at a constant arrival rate of 25, 50 and 75 % of the rate the
 * same run measured closed-loop (autocannon at --connections), each latency counted from the request's
 * intended send time (bench/open-loop-generator.ts, its own process). Closed-loop load hides queueing: a
 * client that waits for answers slows down with the server. A drop's users do not.
 */
import path from 'node:path'
import { fmtInt } from '../progress.js'
import { spawnNode } from '../processes.js'
import { createCampaign, HUGE_STOCK, startServer, type Api, type Env } from '../env.js'

const OPEN_LOOP_LOADS = [25, 50, 75] as const

export interface OpenLoopJob {
  url: string
  /** Requests per second, one every 1/rate s. */
  rate: number
  seconds: number
  /** Seconds sent before the measured ones, at the same rate, not recorded (--warmup). */
  warmupSeconds: number
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
  /** Measured requests sent (the warm-up's not included). */
  sent: number
  warmupRequests: number
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

export interface OpenLoopRuns {
  claims: OpenLoopFigures[]
  /** The bare route (bench/ceiling-server.ts) at the same rates, right after each claims run; null: not asked. */
  ceiling: OpenLoopFigures[] | null
}

/**
 * Runs the three loads one after another on a fresh campaign whose stock exceeds every request. With
 * `ceiling`, each rate is also sent to the bare route: the same generator, machine and moment, so the part
 * of a tail that is the machine's and the generator's own shows apart from what a claim adds.
 */
export async function runOpenLoop(env: Env, { url }: Api, issueRps: number,
  opts: { ceiling: boolean }): Promise<OpenLoopRuns> {
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
  let bare: Api | null = null
  try {
    if (opts.ceiling) bare = await startServer(env, 'ceiling-open-loop', 'bench/ceiling-server')
    if ((await next()).type !== 'ready') throw new Error('open-loop generator: expected ready')
    const run = async (label: string, target: string, loadPct: number, rate: number): Promise<OpenLoopFigures> => {
      env.progress.step(`  ${label} ${loadPct} %: ${fmtInt(rate)} req/s for ${env.opts.duration} s`)
      const job: OpenLoopJob = {
        url: target, rate, seconds: env.opts.duration, warmupSeconds: env.opts.warmup,
        auth: env.opts.auth === 'jwt' ? { kind: 'jwt', secret: env.jwtSecret } : { kind: 'header', header: env.userHeader },
        userPrefix: `${env.runId}-${label.replace(/\W/g, '')}${loadPct}-`, maxConnections: 1_000, drainTimeoutMs: 30_000,
      }
      proc.child.send({ type: 'run', job })
      const m = await next()
      if (m.type !== 'result') throw new Error(`open-loop generator: ${m.type === 'error' ? m.message : m.type}`)
      const r = m.result
      env.progress.step(`  ${label} ${loadPct} %: p50 ${r.p50Ms.toFixed(2)} ms, p99 ${r.p99Ms.toFixed(2)} ms, p99.9 ${r.p999Ms.toFixed(2)} ms, ${r.within50MsPct.toFixed(2)} % within 50 ms; ${Object.entries(r.statusCodes).map(([c, n]) => `${fmtInt(n)} x ${c}`).join(', ')}${r.errors ? `, ${r.errors} errors` : ''}`)
      return { loadPct, ...r }
    }
    const out: OpenLoopRuns = { claims: [], ceiling: bare ? [] : null }
    for (const loadPct of OPEN_LOOP_LOADS) {
      const rate = Math.max(1, Math.round((issueRps * loadPct) / 100))
      out.claims.push(await run('open loop', `${url}/v1/campaigns/${id}/claims`, loadPct, rate))
      if (bare) out.ceiling!.push(await run('open loop, bare route', `${bare.url}/v1/campaigns/1/claims`, loadPct, rate))
    }
    return out
  } finally {
    if (proc.child.connected) proc.child.send({ type: 'exit' })
    await Promise.all([proc.stop(3_000), bare?.proc.stop()])
  }
}
