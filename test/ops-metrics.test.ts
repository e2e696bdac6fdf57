import t from 'tap'
import { createKeys } from '../src/redis/keys.js'
import { testEnv, startApp, createCampaign, claim, http, freePort, countBy } from './helper.js'

const METRICS_TOKEN = 'metrics-token-0123456789'

interface Sample { name: string; labels: Record<string, string>; value: number }

/** Parses the Prometheus text format into samples. */
function parseMetrics(text: string): Sample[] {
  const out: Sample[] = []
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (!m) throw new Error(`unparseable metrics line: ${line}`)
    const labels: Record<string, string> = {}
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!
    out.push({ name: m[1]!, labels, value: Number(m[3]) })
  }
  return out
}

async function scrape(url: string, token?: string) {
  const res = await fetch(`${url}/metrics`, { headers: token ? { authorization: `Bearer ${token}` } : {} })
  const text = await res.text()
  if (res.status !== 200) throw new Error(`scrape ${res.status}: ${text}`)
  const samples = parseMetrics(text)
  /** The value of the one series with these labels (undefined when absent). */
  const value = (name: string, labels: Record<string, string> = {}) => {
    const hits = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    if (hits.length > 1) throw new Error(`${name} ${JSON.stringify(labels)} matches ${hits.length} series`)
    return hits[0]?.value
  }
  return { text, samples, value, contentType: res.headers.get('content-type') }
}

t.test('metrics move with 100 claims, on the public port (token) and the private listener', async (t) => {
  const metricsPort = await freePort()
  const { config, redis, env } = await testEnv(t,
    { RATE_LIMIT_IP_MAX: '0', RATE_LIMIT_USER_MAX: '0', METRICS_TOKEN, METRICS_PORT: String(metricsPort) })
  const { url } = await startApp(t, config)
  const privateUrl = `http://127.0.0.1:${metricsPort}`
  const id = await createCampaign(url, { name: 'metrics', stock: 60 })
  const stream = createKeys(env.KEY_PREFIX!, config.STREAM_PARTITIONS).streamOf(id)

  const before = await scrape(url, METRICS_TOKEN)
  t.match(before.contentType, /^text\/plain; version=0\.0\.4/)
  for (const name of ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds',
    'nodejs_eventloop_lag_p99_seconds', 'nodejs_heap_size_used_bytes']) {
    t.ok(before.value(name) !== undefined, `default metric ${name}`)
  }
  for (const o of ['issued', 'sold_out', 'at_limit', 'not_open', 'closed', 'unavailable', 'replayed', 'error']) {
    t.equal(before.value('fcfs_claims_total', { outcome: o }), 0, `fcfs_claims_total{outcome="${o}"} starts at 0`)
  }
  t.equal(before.value('fcfs_redis_script_duration_seconds_count', { script: 'claim' }), 0)
  t.equal(before.value('fcfs_stream_backlog', { stream }), 0)

  // 100 concurrent claims: 95 distinct users on stock 60, and user u0 five more times.
  const users = [...Array.from({ length: 95 }, (_, i) => `u${i}`), ...Array.from({ length: 5 }, () => 'u0')]
  const results = await Promise.all(users.map((u) => claim(url, id, u)))
  const statuses = countBy(results, (r) => r.status)
  const issued = statuses['201'] ?? 0
  t.equal(issued, 60, 'stock 60 issued')
  t.equal((statuses['410'] ?? 0) + (statuses['409'] ?? 0), 40)

  // A consumer group that read 10 entries: 10 pending, 50 not yet delivered.
  await redis.xgroup('CREATE', stream, 'metrics-test', '0')
  await redis.xreadgroup('GROUP', 'metrics-test', 'c1', 'COUNT', 10, 'STREAMS', stream, '>')

  const after = await scrape(url, METRICS_TOKEN)
  t.equal(after.value('fcfs_claims_total', { outcome: 'issued' }), 60)
  // Once Redis said SOLD_OUT, later arrivals may be answered from the instance's sold-out cache.
  const local = after.value('fcfs_claims_sold_out_local_total')!
  t.equal(after.value('fcfs_claims_total', { outcome: 'sold_out' })! + local, statuses['410'] ?? 0)
  t.equal(after.value('fcfs_claims_total', { outcome: 'at_limit' }), statuses['409'] ?? 0)
  t.equal(after.value('fcfs_redis_script_duration_seconds_count', { script: 'claim' }), 100 - local,
    'one script call per claim not answered locally')
  t.ok(after.value('fcfs_redis_script_duration_seconds_sum', { script: 'claim' })! > 0)
  t.equal(after.value('fcfs_claim_request_duration_seconds_count', { status: '201' }), 60)
  t.equal(after.value('fcfs_claim_request_duration_seconds_count', { status: '410' }), statuses['410'] ?? 0)
  t.equal(after.value('fcfs_claim_request_duration_seconds_bucket', { status: '201', le: '+Inf' }), 60)
  t.equal(after.value('fcfs_stream_backlog', { stream }), 60, 'backlog = stream entries')
  t.notOk(after.samples.some((s) => s.name === 'fcfs_stream_pending'), 'pending is the workers\' to export (per consumer), not the API\'s')
  t.equal(after.value('fcfs_stream_lag', { stream, group: 'metrics-test' }), 50)
  t.equal(after.value('fcfs_metrics_collect_errors_total'), 0)
  // The private listener serves the same registry.
  const priv = await scrape(privateUrl, METRICS_TOKEN)
  t.equal(priv.value('fcfs_claims_total', { outcome: 'issued' }), 60)

  // An Idempotency-Key replay counts as replayed, not as a second issue.
  const first = await claim(url, id, 'u200', { 'idempotency-key': 'k1' })
  const again = await claim(url, id, 'u200', { 'idempotency-key': 'k1' })
  t.equal(again.status, first.status)
  const last = await scrape(url, METRICS_TOKEN)
  t.equal(last.value('fcfs_claims_total', { outcome: 'replayed' }), 1)
  t.equal(last.value('fcfs_redis_script_duration_seconds_count', { script: 'claim' }), 102 - local,
    'keyed requests always reach the script')
})

t.test('/metrics is protected', async (t) => {
  const metricsPort = await freePort()
  const { config } = await testEnv(t, { METRICS_TOKEN, METRICS_PORT: String(metricsPort) })
  const { url } = await startApp(t, config)
  for (const base of [url, `http://127.0.0.1:${metricsPort}`]) {
    const none = await http(`${base}/metrics`)
    t.equal(none.status, 401)
    t.equal(none.body.code, 'UNAUTHORIZED')
    const wrong = await http(`${base}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}x` } })
    t.equal(wrong.status, 401)
  }
})

t.test('without METRICS_TOKEN: 503 on the public port, open on the private listener', async (t) => {
  const metricsPort = await freePort()
  const { config } = await testEnv(t, { METRICS_PORT: String(metricsPort) })
  const { url, app } = await startApp(t, config)
  const pub = await http(`${url}/metrics`)
  t.equal(pub.status, 503)
  t.equal(pub.body.code, 'METRICS_DISABLED')
  const priv = await scrape(`http://127.0.0.1:${metricsPort}`)
  t.ok(priv.value('fcfs_claims_total', { outcome: 'issued' }) === 0)
  const health = await http(`http://127.0.0.1:${metricsPort}/healthz`)
  t.same(health.body, { status: 'ok' })
  const missing = await http(`http://127.0.0.1:${metricsPort}/v1/campaigns/1`)
  t.equal(missing.status, 404, 'the private listener serves no API route')
  t.equal(missing.body.code, 'NOT_FOUND')
  // Closing the app closes its private listener too.
  await app.close()
  await t.rejects(fetch(`http://127.0.0.1:${metricsPort}/healthz`))
})

t.test('healthz, request ids', async (t) => {
  const { config } = await testEnv(t)
  const { url } = await startApp(t, config)
  const r = await http(`${url}/healthz`, { headers: { 'x-request-id': 'trace-abc-123' } })
  t.equal(r.status, 200)
  t.same(r.body, { status: 'ok' })
  t.equal(r.headers.get('x-request-id'), 'trace-abc-123', 'the caller\'s request id is echoed')
  const generated = await http(`${url}/healthz`)
  t.ok(generated.headers.get('x-request-id'), 'a request id is generated when none is sent')
  const ready = await http(`${url}/readyz`)
  t.equal(ready.status, 200)
  t.same(ready.body, { status: 'ready', checks: { redis: 'ok', postgres: 'ok', scripts: 'ok', eviction: 'ok' } })
})
