/**
 * /readyz against a private redis-server that the test stops, freezes and restarts. The app's own Redis
 * client points at it; the shared Redis (testEnv) is untouched.
 */
import t from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { Redis } from 'ioredis'
import { scriptSources } from '../src/redis/scripts.js'
import { testEnv, startApp, http, freePort, waitForOutput, createCampaign, claim } from './helper.js'

async function startRedis(port: number): Promise<ChildProcess> {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] })
  await waitForOutput(child, /Ready to accept connections/, 10_000)
  return child
}

async function stopRedis(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  child.kill('SIGKILL') // also ends a SIGSTOPped server
  await once(child, 'exit')
}

/** Polls /readyz until `want`; each probe is bounded so a hung probe fails the test instead of stalling it. */
async function readyzUntil(url: string, want: number, attempts = 100) {
  let last: { status: number; body: any } | undefined
  for (let i = 0; i < attempts; i++) {
    last = await http(`${url}/readyz`)
    // 200 may come degraded while PostgreSQL's first connection is still slow: wait for a clean one.
    if (last.status === want && (want !== 200 || !last.body.degraded)) return last
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`/readyz never answered ${want}; last: ${JSON.stringify(last)}`)
}

t.test('/readyz: 503 while Redis is down or hung, 200 again when it is back', async (t) => {
  const port = await freePort()
  let redisServer = await startRedis(port)
  t.teardown(() => stopRedis(redisServer))
  const { config } = await testEnv(t)
  const privateUrl = `redis://127.0.0.1:${port}`
  const { url } = await startApp(t, { ...config, REDIS_URL: privateUrl, READY_TIMEOUT_MS: 300 })

  const ok = await readyzUntil(url, 200)
  t.same(ok.body.checks, { redis: 'ok', postgres: 'ok', scripts: 'ok', eviction: 'ok' })
  const probe = new Redis(privateUrl, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
  t.teardown(() => probe.disconnect())
  await probe.connect()
  // The readiness probe loaded every registered script (src/redis/scripts.ts) into the (fresh) server's cache.
  t.equal((await probe.info('memory')).match(/number_of_cached_scripts:(\d+)/)?.[1],
    String(Object.keys(scriptSources()).length), 'every registered script loaded by the probe')
  probe.disconnect()

  // Hung (SIGSTOP): the connection stays "ready" but PING never answers; the probe's timeout must answer.
  redisServer.kill('SIGSTOP')
  const hung = await http(`${url}/readyz`)
  t.equal(hung.status, 503)
  t.equal(hung.body.code, 'NOT_READY')
  t.match(hung.body.checks.redis, /did not answer within 300 ms/)
  t.equal(hung.body.checks.postgres, 'ok')
  t.same(Object.keys(hung.body).sort(), ['checks', 'code', 'error', 'message', 'statusCode'])
  redisServer.kill('SIGCONT')
  await readyzUntil(url, 200)

  // Down: ioredis reconnects in the background; readiness fails at once instead of queueing behind it.
  await stopRedis(redisServer)
  const down = await readyzUntil(url, 503)
  t.equal(down.body.code, 'NOT_READY')
  t.match(down.body.checks.redis, /redis connection is (connecting|reconnecting|close|end)|did not answer/)
  t.match(down.body.message, /redis/)
  // Still 503 on repeat while the client keeps reconnecting.
  t.equal((await http(`${url}/readyz`)).status, 503)
  t.equal((await http(`${url}/healthz`)).status, 200, 'the process is still alive')

  // Back (empty, as after a restart without persistence): ready again, scripts reloaded.
  redisServer = await startRedis(port)
  const back = await readyzUntil(url, 200)
  t.same(back.body.checks, { redis: 'ok', postgres: 'ok', scripts: 'ok', eviction: 'ok' })
})

// PostgreSQL unreachable: readiness stays 200, degraded (test/hardening-readiness.test.ts).

t.test('after a Redis restart the app reconnects, and refuses (never rebuilds) the lost campaign state', async (t) => {
  const port = await freePort()
  let redisServer = await startRedis(port)
  t.teardown(() => stopRedis(redisServer))
  const { config } = await testEnv(t, { RATE_LIMIT_IP_MAX: '0', RATE_LIMIT_USER_MAX: '0' })
  const { url } = await startApp(t, { ...config, REDIS_URL: `redis://127.0.0.1:${port}` })
  const id = await createCampaign(url, { name: 'r', stock: 5 })
  t.equal((await claim(url, id, 'a')).status, 201)
  await stopRedis(redisServer)
  await readyzUntil(url, 503)
  redisServer = await startRedis(port)
  await readyzUntil(url, 200)
  // The restarted server is empty: the campaign's live state is gone, so the claim is refused, not rebuilt.
  const after = await claim(url, id, 'b')
  t.equal(after.status, 503)
  t.equal(after.body.code, 'CAMPAIGN_UNAVAILABLE')
})
