/**
 * The Prometheus side, checked with the ecosystem's own tool: `promtool check metrics` on the live
 * exposition of the API and of a worker, one name per concept across the two roles, `promtool check
 * config` / `check rules` / `test rules` on deploy/prometheus, and the Grafana dashboard's and the alerts'
 * expressions against the series the two roles really export.
 */
import { spawnSync } from 'node:child_process'
import { readFileSync, readdirSync } from 'node:fs'
import path from 'node:path'
import { parse as parseYaml } from 'yaml'
import { Redis } from 'ioredis'
import t from 'tap'
import { createKeys } from '../src/redis/keys.js'
import { createStreamOps } from '../src/worker/streams.js'
import { createWorkerMetrics } from '../src/worker/metrics.js'
import { testEnv, startApp, createCampaign, freePort, ROOT } from './helper.js'
import { claimMany, fetchJson, startedWorker, waitUntil } from './worker-helper.js'

const promtool = spawnSync('promtool', ['--version']).status === 0
const skip = promtool ? false : 'promtool not installed (Debian: apt-get install prometheus; .ci/run installs it)'

/** promtool check metrics reads the exposition on stdin; exit 0 and no output means no problem. */
function checkMetrics(text: string): { status: number | null; output: string } {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' })
  return { status: r.status, output: `${r.stdout}${r.stderr}`.trim() }
}

function promtoolIn(dir: string, ...args: string[]): { status: number | null; output: string } {
  const r = spawnSync('promtool', args, { cwd: path.join(ROOT, dir), encoding: 'utf8' })
  return { status: r.status, output: `${r.stdout}${r.stderr}`.trim() }
}

// PromQL words that look like metric names but are functions, keywords or label names.
const PROMQL_WORDS = new Set(['sum', 'max', 'min', 'avg', 'count', 'by', 'without', 'rate', 'increase', 'deriv', 'histogram_quantile',
  'and', 'or', 'unless', 'on', 'ignoring', 'le', 'offset', 'bool'])

/** Metric names an expression selects: identifiers outside {...} and [...], not functions or keywords. */
function metricsOf(expr: string): string[] {
  const bare = expr.replace(/\{[^}]*\}/g, '{}').replace(/\[[^\]]*\]/g, '[]').replace(/"[^"]*"/g, '""')
  const out = new Set<string>()
  for (const m of bare.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\(?)/g)) {
    const [, name, call] = m
    if (call || PROMQL_WORDS.has(name!) || /^\d/.test(name!)) continue
    // Grouping labels: by (stream), without (instance).
    const before = bare.slice(0, m.index).trimEnd()
    if (/(by|without|on|ignoring)\s*\([^)]*$/.test(before)) continue
    out.add(name!)
  }
  return [...out]
}

/** Sample names of an exposition (histograms as their _bucket/_sum/_count samples). */
const samplesOf = (text: string) => new Set(text.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(l)![0]))

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

  // Every series the dashboard and the alerts ask for is one the API or the worker exports (or
  // Prometheus' own `up`), so no panel stays empty because of a typo or a rename.
  const exported = new Set([...samplesOf(api.text), ...samplesOf(wm.text), 'up'])
  const dashboard = JSON.parse(readFileSync(path.join(ROOT, 'deploy/grafana/dashboards/fcfs.json'), 'utf8'))
  t.ok(dashboard.panels.length >= 8, `${dashboard.panels.length} panels`)
  const used = new Set<string>()
  for (const panel of dashboard.panels) {
    t.ok(panel.targets?.length > 0, `panel "${panel.title}" has queries`)
    t.equal(panel.datasource?.uid, 'fcfs-prometheus', `panel "${panel.title}" uses the provisioned datasource`)
    for (const target of panel.targets) {
      const ms = metricsOf(target.expr)
      t.ok(ms.length > 0, `"${panel.title}": ${target.expr} selects a metric`)
      for (const m of ms) {
        used.add(m)
        t.ok(exported.has(m), `"${panel.title}": ${m} is exported`)
      }
    }
  }
  // The panels the operators were promised.
  for (const m of ['fcfs_claim_request_duration_seconds_count', 'fcfs_claim_request_duration_seconds_bucket', 'fcfs_campaign_remaining',
    'fcfs_stream_backlog', 'fcfs_stream_lag', 'fcfs_worker_claims_persisted_total', 'fcfs_failed_claims', 'fcfs_backend_up']) {
    t.ok(used.has(m), `the dashboard shows ${m}`)
  }
  const rules = parseYaml(readFileSync(path.join(ROOT, 'deploy/prometheus/alerts.yml'), 'utf8')) as { groups: { rules: { alert: string; expr: string }[] }[] }
  const alerts = rules.groups.flatMap((g) => g.rules)
  t.same(alerts.map((r) => r.alert).sort(), ['FcfsBacklogGrowing', 'FcfsDeadLetters', 'FcfsReadinessFailing'])
  for (const r of alerts) for (const m of metricsOf(r.expr)) t.ok(exported.has(m), `alert ${r.alert}: ${m} is exported`)
  // The remaining-stock gauge carries this campaign (sold out: 0 left).
  t.match(api.text, new RegExp(`^fcfs_campaign_remaining\\{campaign="${id}"\\} 0$`, 'm'))
})

t.test('promtool accepts the Prometheus config and the alerting rules, and the rules fire as their unit tests say', { skip }, async (t) => {
  t.match(promtoolIn('deploy/prometheus', 'check', 'config', 'prometheus.yml'), { status: 0, output: /SUCCESS: 1 rule files found/ })
  t.match(promtoolIn('deploy/prometheus', 'check', 'rules', 'alerts.yml'), { status: 0, output: /SUCCESS: 3 rules found/ })
  t.match(promtoolIn('deploy/prometheus', 'test', 'rules', 'alerts.test.yml'), { status: 0, output: /SUCCESS/ })
  // The scrape jobs find both roles on the ports the compose file gives them.
  const prom = parseYaml(readFileSync(path.join(ROOT, 'deploy/prometheus/prometheus.yml'), 'utf8'))
  const jobs = Object.fromEntries(prom.scrape_configs.map((j: any) => [j.job_name, j.dns_sd_configs[0]]))
  t.match(jobs['fcfs-api'], { names: ['api'], port: 9100 })
  t.match(jobs['fcfs-worker'], { names: ['worker'], port: 9464 })
  const compose = parseYaml(readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true })
  t.equal(compose.services.api.environment.METRICS_PORT, 9100)
  t.equal(compose.services.worker.environment.WORKER_METRICS_PORT, 9464)
})

t.test('Grafana provisioning: the datasource the dashboard names, the folder compose mounts', async (t) => {
  const ds = parseYaml(readFileSync(path.join(ROOT, 'deploy/grafana/provisioning/datasources/prometheus.yml'), 'utf8'))
  t.match(ds.datasources[0], { uid: 'fcfs-prometheus', type: 'prometheus', url: 'http://prometheus:9090' })
  const provider = parseYaml(readFileSync(path.join(ROOT, 'deploy/grafana/provisioning/dashboards/fcfs.yml'), 'utf8'))
  t.equal(provider.providers[0].options.path, '/etc/grafana/dashboards')
  for (const f of readdirSync(path.join(ROOT, 'deploy/grafana/dashboards'))) {
    const d = JSON.parse(readFileSync(path.join(ROOT, 'deploy/grafana/dashboards', f), 'utf8'))
    t.ok(d.uid && d.title && Array.isArray(d.panels), `${f} is a dashboard`)
    t.equal(new Set(d.panels.map((p: { id: number }) => p.id)).size, d.panels.length, `${f}: panel ids are unique`)
  }
  t.same(metricsOf('histogram_quantile(0.99, sum by (le) (rate(fcfs_claim_request_duration_seconds_bucket{status="201"}[5m])))'),
    ['fcfs_claim_request_duration_seconds_bucket'], 'the expression parser finds the metric and nothing else')
  t.same(metricsOf('max by (stream) (fcfs_stream_backlog) > 1000 and min by (job, instance) (up{job=~"a|b"}) == 0').sort(), ['fcfs_stream_backlog', 'up'])
})

t.test('fcfs_stream_pending: each consumer exports its own share', async (t) => {
  const { config } = await testEnv(t)
  const redis = new Redis(config.REDIS_URL)
  const blocking = new Redis(config.REDIS_URL)
  t.teardown(() => { redis.disconnect(); blocking.disconnect() })
  const keys = createKeys(config.KEY_PREFIX, 2)
  const streams = keys.streams()
  const ops = (consumer: string) => createStreamOps({ redis, readers: [{ streams, blocking }], group: 'g', consumer })
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
