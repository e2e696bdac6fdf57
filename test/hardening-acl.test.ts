/**
 * Least privilege: the API, the worker and reconcile run as a Redis ACL user with exactly the rule of
 * src/redis/acl.ts (printed in docs/security.md) through a real claim -> persisted -> reconcile clean, and
 * Redis denies them nothing (ACL LOG stays empty). Commands taken away do not go silent: without CONFIG GET
 * readiness says the policy is unknown (and the API refuses to start unless acknowledged), without
 * XLEN/XINFO /metrics counts a collect error, without XGROUP CREATE the worker exits naming the command.
 */
import t from 'tap'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { spawn } from 'node:child_process'
import { testEnv, startApp, spawnServer, freePort, http, createCampaign, claim, ROOT } from './helper.js'
import { startPrivateRedis } from './private-redis.js'
import { spawnWorker, waitUntil, rowCount } from './worker-helper.js'
import { runReconcile } from './reconcile-helper.js'
import { ACL_COMMANDS, aclRule } from '../src/redis/acl.js'
import { entryArgs } from './process.js'

const PASSWORD = 'acl-test-password-0123'
const METRICS_TOKEN = 'metrics-token-0123456789'

t.test('docs/security.md prints the rule the code needs', async (t) => {
  const doc = readFileSync(path.join(ROOT, 'docs/security.md'), 'utf8')
  t.ok(doc.includes(aclRule('fcfs')), 'the ACL line for KEY_PREFIX=fcfs is in docs/security.md')
})

t.test('API, worker and reconcile as the ACL user: claim, persisted, reconcile clean, nothing denied', async (t) => {
  const r = await startPrivateRedis(t)
  const { env, sql } = await testEnv(t, { RATE_LIMIT_IP_MAX: '0', METRICS_TOKEN })
  const prefix = env.KEY_PREFIX!
  const user = (name: string, rule: string) => r.admin.call('ACL', 'SETUSER', name, 'reset', ...rule.split(' '))
  await user('fcfs', aclRule(prefix, PASSWORD))
  const as = (name: string) => ({ ...env, REDIS_URL: `redis://${name}:${PASSWORD}@127.0.0.1:${r.port}` })

  const port = await freePort()
  const worker = spawnWorker(t, as('fcfs'), 'acl-worker')
  const [{ url }] = await Promise.all([spawnServer(t, as('fcfs'), port), worker.waitForLog((l) => l.msg === 'worker started', 90_000)])
  const id = await createCampaign(url, { name: 'acl', stock: 5 })
  const c = await claim(url, id, 'alice')
  t.equal(c.status, 201)
  await waitUntil('the claim persisted', async () => (await rowCount(sql, id)) === 1)
  t.equal((await http(`${url}/readyz`)).status, 200, 'ready as the ACL user')
  const metrics = await http(`${url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })
  t.match(metrics.body, /fcfs_metrics_collect_errors_total 0/)
  const rec = await runReconcile(as('fcfs'), ['--json'])
  t.equal(rec.code, 0, rec.stderr)
  t.equal(rec.json?.ok, true)
  t.same(await r.admin.call('ACL', 'LOG'), [], 'Redis denied the service nothing')

  // Without CONFIG GET: the policy is unknown.
  await user('noconfig', aclRule(prefix, PASSWORD).replace(' +config|get', ''))
  const { url: unknown } = await startApp(t, { ...(await testEnv(t)).config, KEY_PREFIX: prefix, REDIS_URL: as('noconfig').REDIS_URL })
  const ru = await http(`${unknown}/readyz`)
  t.equal(ru.status, 503)
  t.match(ru.body.checks.eviction, /policy unknown.*REDIS_EVICTION_POLICY_ACK/)
  const { url: acked } = await startApp(t, { ...(await testEnv(t)).config, KEY_PREFIX: prefix, REDIS_URL: as('noconfig').REDIS_URL, REDIS_EVICTION_POLICY_ACK: 'noeviction' })
  t.equal((await http(`${acked}/readyz`)).status, 200, 'acknowledged: ready')
  const refused = await new Promise<{ code: number | null; out: string }>((resolve) => {
    const child = spawn(process.execPath, [...entryArgs('src/server')], {
      cwd: ROOT, env: { ...process.env, ...as('noconfig'), PORT: '0', LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    child.stdout.on('data', (d) => { out += d })
    child.stderr.on('data', (d) => { out += d })
    child.on('close', (code) => resolve({ code, out }))
  })
  t.equal(refused.code, 1, 'API refuses to start on an unknown policy')
  t.match(refused.out, /policy unknown/)

  // Without XLEN and XINFO: /metrics counts and logs the refusal instead of going empty.
  await user('nostreams', aclRule(prefix, PASSWORD).replace(' +xlen', '').replace(' +xinfo|groups', ''))
  const { url: blind } = await startApp(t, { ...(await testEnv(t)).config, KEY_PREFIX: prefix, REDIS_URL: as('nostreams').REDIS_URL, METRICS_TOKEN })
  const m = await http(`${blind}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })
  t.match(m.body, /fcfs_metrics_collect_errors_total [1-9]/, 'the refusal is counted')

  // Without XGROUP CREATE: the worker exits 1 naming the command.
  await user('nogroup', aclRule(prefix, PASSWORD).replace(' +xgroup|create', ''))
  const w = spawnWorker(t, { ...as('nogroup'), WORKER_GROUP: 'other-group' }, 'nogroup-worker')
  const exit = await w.exited
  t.equal(exit.code, 1, 'the worker exits 1')
  t.match(w.output(), /NOPERM.*xgroup\|create/i)
  t.ok(ACL_COMMANDS.length > 20)
})
