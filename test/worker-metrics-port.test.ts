/**
 * Two workers on one host (issue 18): the default metrics port, when taken, falls back to a free port and
 * says which; a taken port set explicitly stops the worker with one line that says what to do. Pretty logs
 * when asked (npm run dev asks).
 */
import t from 'tap'
import net from 'node:net'
import { once } from 'node:events'
import { Writable } from 'node:stream'
import { pino } from 'pino'
import { Registry } from 'prom-client'
import { startMetricsServer, MetricsPortInUse } from '../src/worker/metrics.js'
import { prettyLogs, loadConfig } from '../src/config.js'
import { testEnv } from './helper.js'
import { entryArgs, runToEnd } from './process.js'

async function takenPort(t: { teardown(fn: () => unknown): void }): Promise<number> {
  const blocker = net.createServer()
  blocker.listen(0, '127.0.0.1')
  await once(blocker, 'listening')
  t.teardown(() => blocker.close())
  return (blocker.address() as net.AddressInfo).port
}

function capture() {
  const lines: Record<string, unknown>[] = []
  const log = pino({ level: 'info' }, new Writable({
    write(chunk, _enc, cb) { lines.push(JSON.parse(String(chunk))); cb() },
  }))
  return { log, lines }
}

const ready = async () => ({ redis: true, postgres: true })

t.test('the default port taken: a free port instead, named in a warning', async (t) => {
  const taken = await takenPort(t)
  const { log, lines } = capture()
  const m = await startMetricsServer({ host: '127.0.0.1', port: taken, register: new Registry(), ready, log,
    orAnyFreePort: true })
  t.teardown(() => m.server.close())
  t.not(m.port, taken)
  t.equal((await fetch(`http://127.0.0.1:${m.port}/healthz`)).status, 200, 'serving on the new port')
  const warn = lines.find((l) => l.level === 40)
  t.ok(warn, 'a warning')
  t.match(String(warn!.msg), `port ${taken} is in use`)
  t.match(String(warn!.msg), `listening on ${m.port} instead`)
})

t.test('an explicit port taken: MetricsPortInUse naming WORKER_METRICS_PORT, and the worker exits 1 with it', async (t) => {
  const taken = await takenPort(t)
  const { log } = capture()
  await t.rejects(startMetricsServer({ host: '127.0.0.1', port: taken, register: new Registry(), ready, log }),
    MetricsPortInUse)
  await t.rejects(startMetricsServer({ host: '127.0.0.1', port: taken, register: new Registry(), ready, log }),
    /WORKER_METRICS_PORT \d+ is in use .*0 for any free port, or -1/)

  const { env } = await testEnv(t)
  const r = await runToEnd(process.execPath, entryArgs('src/worker/main'), { ...env, WORKER_METRICS_PORT: String(taken),
    LOG_PRETTY: 'true', LOG_LEVEL: 'info' }, 60_000)
  t.equal(r.code, 1, r.stdout + r.stderr)
  t.match(r.stdout, `WORKER_METRICS_PORT ${taken} is in use`, 'says what is wrong and what to do')
  t.notMatch(r.stdout, /^\{"level"/m, 'pretty lines, not JSON')
  t.notMatch(r.stdout, /EADDRINUSE/, 'no stack trace')
})

t.test('LOG_PRETTY: true and false win, auto follows the terminal outside production', async (t) => {
  const c = (v: Record<string, string>) => loadConfig({ JWT_SECRET: 'x'.repeat(16), ...v })
  t.equal(prettyLogs(c({ LOG_PRETTY: 'true' }), false), true)
  t.equal(prettyLogs(c({ LOG_PRETTY: 'false' }), true), false)
  t.equal(prettyLogs(c({}), true), true)
  t.equal(prettyLogs(c({}), false), false)
  t.equal(prettyLogs(c({ NODE_ENV: 'production', JWT_SECRET: 'y'.repeat(16) }), true), false)
  t.throws(() => c({ LOG_PRETTY: 'yes' }), /LOG_PRETTY/)
})
