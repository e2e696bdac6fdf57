/** Sold out: every request arrives after the last unit went. */
import { createCampaign, job, measure, statusLine, type Api, type Env, type HttpFigures } from '../env.js'

export async function runSoldOut(env: Env, { url, proc }: Api): Promise<HttpFigures> {
  env.progress.step('sold out: every request arrives after the last unit went')
  const id = await createCampaign(env, url, 'bench sold out', 1)
  const first = await env.load.run({ ...job(env, `${url}/v1/campaigns/${id}/claims`, 'soldout-first'), amount: 1,
    connections: 1 })
  if (first.statusCodes['201'] !== 1) throw new Error(`sold-out set-up: expected one 201, got ${statusLine(first.statusCodes)}`)
  return measure(env, 'sold out', job(env, `${url}/v1/campaigns/${id}/claims`, 'soldout'), proc)
}
