/** Issue path: stock larger than the requests, every request wins; then what each claim sends Redis. */
import { Redis } from 'ioredis'
import { sleep } from '../processes.js'
import { createCampaign, HUGE_STOCK, job, measure, type Api, type Env, type HttpFigures } from '../env.js'

/** What the API sent Redis for each claim, seen through MONITOR over a short run of fresh users. */
export interface RoundTrips {
  claims: number
  /** Commands the API's connections sent, by name, per claim (EVALSHA: 1 is one round trip). */
  perClaim: Record<string, number>
  roundTripsPerClaim: number
  /** Keyed commands claim.lua ran per claim (TIME, unkeyed, is not counted). */
  insideScriptPerClaim: number
}

export async function runIssue(env: Env, { url, proc }: Api): Promise<HttpFigures & { redis: RoundTrips }> {
  env.progress.step('issue path: stock larger than the requests, every request wins')
  const id = await createCampaign(env, url, 'bench issue path', HUGE_STOCK)
  const figures = await measure(env, 'issue', job(env, `${url}/v1/campaigns/${id}/claims`, 'issue'), proc)
  return { ...figures, redis: await countRoundTrips(env, `${url}/v1/campaigns/${id}/claims`) }
}

/**
 * Counts what reaches Redis per claim with MONITOR, briefly (it slows Redis down, so it runs after the
 * measured window): the API's connections are the ones that sent a command naming this run's keys;
 * everything they sent is counted, keyed or not. Commands run inside a script show as "lua".
 */
async function countRoundTrips(env: Env, url: string, claims = 500): Promise<RoundTrips> {
  const monitor = new Redis(env.config.REDIS_URL, { lazyConnect: true })
  const m = await monitor.monitor()
  const lines: { source: string; cmd: string; ours: boolean }[] = []
  const mine = `${env.prefix}:`
  // ioredis reports a monitor line that arrives with MONITOR's own OK (a background script of the API ran
  // then) as "Command queue state error" on the connection; unheard, that error would end the bench. Such a
  // line comes before the claims below are sent, so the count is unaffected.
  m.on('error', (err: Error) => env.progress.step(`  MONITOR connection: ${err.message}`))
  m.on('monitor', (_time: string, args: string[], source: string) => {
    lines.push({ source, cmd: String(args[0]).toLowerCase(), ours: args.some((a) => String(a).startsWith(mine)) })
  })
  try {
    await sleep(100)
    const r = await env.load.run({ ...job(env, url, 'monitor'), amount: claims, connections: 10 })
    await sleep(200)
    const answered = r.statusCodes['201'] ?? 0
    const api = new Set(lines.filter((l) => l.ours && l.source !== 'lua').map((l) => l.source))
    const perClaim: Record<string, number> = {}
    for (const l of lines) if (api.has(l.source)) perClaim[l.cmd] = (perClaim[l.cmd] ?? 0) + 1
    for (const k of Object.keys(perClaim)) perClaim[k] = (perClaim[k] ?? 0) / Math.max(1, answered)
    const inside = lines.filter((l) => l.source === 'lua' && l.ours).length
    return {
      claims: answered, perClaim,
      roundTripsPerClaim: Object.values(perClaim).reduce((a, b) => a + b, 0),
      insideScriptPerClaim: inside / Math.max(1, answered),
    }
  } finally {
    m.disconnect()
    monitor.disconnect()
  }
}
