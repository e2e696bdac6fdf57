/**
 * The Prometheus side, checked with the ecosystem's own tool: `promtool check metrics` on the live
 * exposition of the API and of a worker, and one name per concept across the two roles.
 */
import { spawnSync } from 'node:child_process'
import { Redis } from 'ioredis'
import t from 'tap'
import { createKeys } from '../src/redis/keys.js'
import { createStreamOps } from '../src/worker/streams.js'
import { createWorkerMetrics } from '../src/worker/metrics.js'
import { testEnv, startApp, createCampaign, freePort } from './helper.js'
import { claimMany, fetchJson, startedWorker, waitUntil } from './worker-helper.js'

const promtool = spawnSync('promtool', ['--version']).status === 0
const skip = promtool ? false : 'promtool not installed (Debian: apt-get install prometheus; .ci/run installs it)'

/** promtool check metrics reads the exposition on stdin; exit 0 and no output means no problem. */
function checkMetrics(text: string): { status: number | null; output: string } {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' })
  return { status: r.status, output: `${r.stdout}${r.stderr}`.trim() }
}

const names = (text: string) => new Set(text.split('\n').filter((l) => l.startsWith('# TYPE ')).map((l) => l.split(' ')[2]!))

t.test('promtool check metrics passes on the API and the worker; one name per concept', { skip }, async (t) => {
  const metricsPort = await freePort()
  const { config, env } = await testEnv(t, { RATE_LIMIT_IP_MAX: '0', RATE_LIMIT_USER_MAX: '0', METRICS_PORT: String(metricsPort) })
  const { url } = await startApp(t, config)
  const worker = await startedWorker(t, env, 'prom-w1', { WORKER_METRICS_PORT: '0' })
  const id = await createCampaign(url, { name: 'prom', stock: 20 })
  // Every labelled series gets children (201, 409, 410 answers; a stream with entries and a group).
  const users = ['u1', ...Array.from({ length: 25 }, (_, i) => `u${i}`)]
  t.same(await claimMany(url, id, users, 1), { 201: 20, 409: 1, 410: 5 })

  const api = await fetchJson(`http://127.0.0.1:${metricsPort}/metrics`)
  t.equal(api.status, 200)
  const apiCheck = checkMetrics(api.text)
  t.same(apiCheck, { status: 0, output: '' }, 'API /metrics passes promtool check metrics')

  const port = (await worker.waitForLog((l) => l.msg === 'worker metrics listening')).port
  const wm = (await waitUntil('worker persisted the claims', async () => {
    const r = await fetchJson(`http://127.0.0.1:${port}/metrics`)
    return /^fcfs_worker_claims_persisted_total 20$/m.test(r.text) ? r : null
  }))!
  const workerCheck = checkMetrics(wm.text)
  t.same(workerCheck, { status: 0, output: '' }, 'worker /metrics passes promtool check metrics')

  // The misnamed gauges are gone; their per-type split remains.
  for (const text of [api.text, wm.text]) {
    t.notMatch(text, /^nodejs_active_(handles|requests|resources)_total/m)
    t.match(text, /^# TYPE nodejs_active_handles gauge$/m)
  }
  // One name per concept: the backlog is fcfs_stream_backlog, exported by the API only; pending is
  // exported by the workers only, per consumer, so a sum over workers counts each entry once.
  const apiNames = names(api.text)
  const workerNames = names(wm.text)
  t.ok(apiNames.has('fcfs_stream_backlog') && apiNames.has('fcfs_stream_lag'))
  t.notOk(workerNames.has('fcfs_stream_backlog') || workerNames.has('fcfs_stream_lag'))
  t.notOk(apiNames.has('fcfs_stream_pending'))
  t.ok(workerNames.has('fcfs_stream_pending'))
  t.notOk(apiNames.has('fcfs_stream_length') || workerNames.has('fcfs_stream_length'), 'the old name is gone')
  const fcfsShared = [...apiNames].filter((n) => n.startsWith('fcfs_') && workerNames.has(n))
  t.same(fcfsShared, [], 'no fcfs_ series is exported by both roles')
})

t.test('fcfs_stream_pending: each consumer exports its own share', async (t) => {
  const { config } = await testEnv(t)
  const redis = new Redis(config.REDIS_URL)
  const blocking = new Redis(config.REDIS_URL)
  t.teardown(() => { redis.disconnect(); blocking.disconnect() })
  const keys = createKeys(config.KEY_PREFIX, 2)
  const streams = keys.streams()
  const ops = (consumer: string) => createStreamOps({ redis, blocking, streams, group: 'g', consumer })
  const a = ops('a')
  const b = ops('b')
  await a.ensureGroups()
  for (let i = 0; i < 5; i++) await redis.xadd(streams[0]!, '*', 'n', String(i))
  await redis.xadd(streams[1]!, '*', 'n', 'x')
  t.equal((await a.readNew(3, 10)).length, 4, '3 from stream 0, 1 from stream 1')
  t.equal((await b.readNew(10, 10)).length, 2)
  t.same(await a.ownPending(), [{ stream: streams[0], pending: 3 }, { stream: streams[1], pending: 1 }])
  t.same(await b.ownPending(), [{ stream: streams[0], pending: 2 }, { stream: streams[1], pending: 0 }])

  const m = createWorkerMetrics('g', 'a', { ownPending: () => a.ownPending(), unresolvedFailures: async () => 0 })
  const text = await m.register.metrics()
  t.match(text, new RegExp(`^fcfs_stream_pending\\{stream="${streams[0]!.replace(/[{}]/g, '\\$&')}",group="g",consumer="a"\\} 3$`, 'm'))
  t.notMatch(text, /consumer="b"/)
})
