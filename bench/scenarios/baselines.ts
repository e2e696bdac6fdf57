/** Baselines: the same client against a database lock, a Redis lock and INCR + a set check. */
import { fmtInt } from '../progress.js'
import { createDbLockCampaign, createDbLockTables } from '../baselines/db-lock.js'
import { checkRedisLock, createRedisLockCampaign } from '../baselines/redis-lock.js'
import { checkTwoStep, createTwoStepCampaign } from '../baselines/two-step.js'
import { idCounterKey } from '../baselines/keys.js'
import type { BaselineCheck } from '../baselines/outcome.js'
import { fire, HUGE_STOCK, job, measure, startServer, type Env, type HttpFigures } from '../env.js'

interface BaselineBurst extends BaselineCheck {
  requests: number
  created201: number
  seconds: number
  statusCodes: Record<string, number>
}

async function baselineBurst(env: Env, url: string, label: string, id: string, perUser: number,
  check: () => Promise<BaselineCheck>): Promise<BaselineBurst> {
  const r = await fire(env, label, job(env, `${url}`.replace(':id', id), `${label.replace(/\W+/g, '-')}`, { perUser }),
    env.opts.users)
  const c = await check()
  env.progress.step(`  ${label}: issued ${fmtInt(c.issued)} of stock ${fmtInt(env.opts.stock)}, oversold ${c.oversold}, double-issued ${c.doubleIssued}, duplicate sequences ${c.duplicateSequences}`)
  return { ...c, requests: r.requests, created201: r.statusCodes['201'] ?? 0, seconds: r.seconds,
    statusCodes: r.statusCodes }
}

export interface Baselines {
  dbLock: HttpFigures
  redisLock: HttpFigures & { burst: BaselineBurst }
  twoStep: HttpFigures & { oversold: number; doubleIssued: number; burst: BaselineBurst; doubleClick: BaselineBurst }
}

export async function runBaselines(env: Env): Promise<Baselines> {
  env.progress.step('baselines: the same client against (a) SELECT ... FOR UPDATE, (b) a Redis lock, (c) INCR + a set check')
  await createDbLockTables(env.sql)
  const { proc, url } = await startServer(env, 'baselines', 'bench/baselines/server')
  const nextId = async () => String(await env.redis.incr(idCounterKey(env.prefix)))
  const { stock } = env.opts
  try {
    const a = await createDbLockCampaign(env.sql, HUGE_STOCK)
    const dbLock = await measure(env, '(a) db lock', job(env, `${url}/baselines/db-lock/${a}/claims`, 'dblock'), proc)

    const b = await nextId()
    await createRedisLockCampaign(env.redis, env.prefix, b, HUGE_STOCK)
    const redisLock = await measure(env, '(b) redis lock',
      job(env, `${url}/baselines/redis-lock/${b}/claims`, 'redislock'), proc)
    const bBurst = await nextId()
    await createRedisLockCampaign(env.redis, env.prefix, bBurst, stock)
    const redisLockBurst = await baselineBurst(env, `${url}/baselines/redis-lock/:id/claims`, '(b) burst', bBurst, 1,
      () => checkRedisLock(env.redis, env.prefix, bBurst))

    const c = await nextId()
    await createTwoStepCampaign(env.redis, env.prefix, c, HUGE_STOCK)
    const twoStep = await measure(env, '(c) two-step', job(env, `${url}/baselines/two-step/${c}/claims`, 'twostep'),
      proc)
    const cBurst = await nextId()
    await createTwoStepCampaign(env.redis, env.prefix, cBurst, stock)
    const twoStepBurst = await baselineBurst(env, `${url}/baselines/two-step/:id/claims`, '(c) burst', cBurst, 1,
      () => checkTwoStep(env.redis, env.prefix, cBurst))
    // The same burst where every user clicks twice: the race a per-user check in a separate round trip invites.
    const cDouble = await nextId()
    await createTwoStepCampaign(env.redis, env.prefix, cDouble, stock)
    const twoStepDouble = await baselineBurst(env, `${url}/baselines/two-step/:id/claims`, '(c) double-click burst',
      cDouble, 2,
      () => checkTwoStep(env.redis, env.prefix, cDouble))

    return {
      dbLock,
      redisLock: { ...redisLock, burst: redisLockBurst },
      twoStep: {
        ...twoStep,
        oversold: Math.max(twoStepBurst.oversold, twoStepDouble.oversold),
        doubleIssued: Math.max(twoStepBurst.doubleIssued, twoStepDouble.doubleIssued),
        burst: twoStepBurst, doubleClick: twoStepDouble,
      },
    }
  } finally {
    await proc.stop()
  }
}
