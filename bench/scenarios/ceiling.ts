/** Ceiling: a bare Fastify route with the API's server options and process layout (what HTTP alone costs). */
import { job, measure, profileArgs, startServer, type Env, type HttpFigures } from '../env.js'

export async function runCeiling(env: Env): Promise<HttpFigures> {
  env.progress.step('ceiling: bare Fastify route, same server options and process layout')
  const { proc, url } = await startServer(env, 'ceiling', 'bench/ceiling-server', profileArgs(env, 'ceiling'))
  try {
    return await measure(env, 'ceiling', job(env, `${url}/v1/campaigns/1/claims`, 'ceiling'), proc)
  } finally {
    await proc.stop()
  }
}
