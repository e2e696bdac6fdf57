/** Ceiling, issue path and sold out measured by wrk instead of the Node load generator. */
import { runWrk, wrkLine, wrkVersion, type WrkFigures } from '../wrk.js'
import { createCampaign, HUGE_STOCK, startServer, type Env } from '../env.js'

export interface WrkResults {
  /** wrk's version, or null when it is not installed (then nothing else is measured). */
  version: string | null
  ceiling: WrkFigures | null
  issue: WrkFigures | null
  soldOut: WrkFigures | null
}

/** Ceiling, issue path and sold out through wrk (bench/wrk.ts), both servers in the trusted-header mode. */
export async function runWrkScenarios(env: Env): Promise<WrkResults> {
  const version = wrkVersion()
  if (!version) {
    env.progress.step('wrk: not installed, skipped (Debian: apt-get install wrk)')
    return { version: null, ceiling: null, issue: null, soldOut: null }
  }
  env.progress.step(`wrk (${version}, 1 thread): ceiling, issue path and sold out, x-user-id header per request`)
  const headerMode = { TRUSTED_USER_HEADER: env.userHeader, JWT_SECRET: '' }
  const { connections, warmup, duration } = env.opts
  const wrk = async (label: string, url: string, users: string) => {
    const base = { connections, header: env.userHeader, userPrefix: `${env.runId}-wrk-${users}-` }
    if (warmup > 0) await runWrk(url, { ...base, seconds: warmup, userPrefix: `${base.userPrefix}w` })
    env.progress.step(`  wrk ${label}: measuring ${duration} s at ${connections} connections`)
    const f = await runWrk(url, { ...base, seconds: duration })
    env.progress.step(`  wrk ${label}: ${wrkLine(f)}`)
    return f
  }
  const ceilingServer = await startServer(env, 'wrk-ceiling', 'bench/ceiling-server', [], headerMode)
  let ceiling: WrkFigures
  try {
    ceiling = await wrk('ceiling', `${ceilingServer.url}/v1/campaigns/1/claims`, 'ceiling')
  } finally {
    await ceilingServer.proc.stop()
  }
  const api = await startServer(env, 'wrk-api', 'src/server', [], headerMode)
  try {
    const issueId = await createCampaign(env, api.url, 'bench wrk issue path', HUGE_STOCK)
    const issue = await wrk('issue', `${api.url}/v1/campaigns/${issueId}/claims`, 'issue')
    const soldOutId = await createCampaign(env, api.url, 'bench wrk sold out', 1)
    const first = await fetch(`${api.url}/v1/campaigns/${soldOutId}/claims`,
      { method: 'POST', headers: { [env.userHeader]: `${env.runId}-wrk-first` } })
    if (first.status !== 201) throw new Error(`wrk sold-out set-up: expected 201, got ${first.status}`)
    const soldOut = await wrk('sold out', `${api.url}/v1/campaigns/${soldOutId}/claims`, 'soldout')
    return { version, ceiling, issue, soldOut }
  } finally {
    await api.proc.stop()
  }
}
