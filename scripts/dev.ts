/**
 * npm run dev: migrate, then the API and one worker as child processes of this one, with development secrets
 * when none are set. Children run in their own process groups and get exactly one SIGTERM from here: a
 * Ctrl-C that reached them as well would count as close-with-grace's second signal and cut their drain short.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, readdirSync, statSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseCli } from '../src/cli.js'
import type { Config } from '../src/config.js'
import type { LocalServices } from './dev-services.js'

parseCli({
  command: 'npm run dev --',
  summary: 'Migrates the database, then runs the API and one worker together with development secrets (printed ' +
    'below, refused when NODE_ENV=production) and prints a curl sequence to try it. When nothing answers at a ' +
    'loopback DATABASE_URL or REDIS_URL it starts them itself: an embedded PostgreSQL (data in DEV_DATA_DIR, ' +
    'default .dev/) and a data-less redis-server from PATH. Ctrl-C or SIGTERM stops both cleanly, then what it ' +
    'started. Configured by the same environment variables as npm start and npm run worker.',
  options: {},
  exitCodes: [[0, 'stopped by Ctrl-C/SIGTERM, both processes exited cleanly'], [1, 'configuration error, ' +
    'NODE_ENV=production, PostgreSQL or Redis unreachable and not startable here, migration failed, or the API or ' +
    'the worker stopped by itself'], [2, 'bad arguments']],
  env: ['PORT', 'HOST', 'DATABASE_URL', 'REDIS_URL', 'KEY_PREFIX', 'ADMIN_TOKEN', 'JWT_SECRET', 'WORKER_METRICS_PORT',
    'LOG_LEVEL', 'LOG_PRETTY', 'DEV_DATA_DIR', '(and every other variable of the API and the worker)'],
})

const [{ ConfigError, DEV_SECRETS, loadConfig }, { migrateDatabase }, { DevServiceError, startLocalServices }] =
  await Promise.all([import('../src/config.js'), import('../src/db/migrate.js'), import('./dev-services.js')])
const dist = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const root = path.resolve(dist, '..')

if (process.env.NODE_ENV === 'production') {
  console.error('npm run dev is for development: it refuses to run with NODE_ENV=production (use npm start and ' +
    'npm run worker)')
  process.exit(1)
}
const env: Record<string, string | undefined> = { ...process.env, NODE_ENV: process.env.NODE_ENV || 'development' }
const defaulted = (Object.keys(DEV_SECRETS) as (keyof typeof DEV_SECRETS)[]).filter((k) => !env[k])
for (const k of defaulted) env[k] = DEV_SECRETS[k]
// Readable log lines by default, also when this output is piped (LOG_PRETTY=false or auto to change it).
env.LOG_PRETTY ||= 'true'

let config: Config
try {
  config = loadConfig(env)
  loadConfig(env, 'worker')
} catch (err) {
  console.error(err instanceof ConfigError ? err.message : err)
  process.exit(1)
}
warnIfStale()

const children: { name: string; proc: ChildProcess }[] = []
let stopping = false
// Settled before stop() stops what it started, so a Ctrl-C during initdb leaves nothing running either.
const servicesReady: Promise<LocalServices | undefined> = startLocalServices({
  DATABASE_URL: config.DATABASE_URL, REDIS_URL: config.REDIS_URL, cluster: Boolean(config.REDIS_CLUSTER_NODES),
  dir: path.resolve(root, env.DEV_DATA_DIR || '.dev'),
}).catch((err: unknown) => {
  console.error(err instanceof DevServiceError ? `npm run dev: ${err.message}` : err)
  void stop(1)
  return undefined
})
// Set once started, for the synchronous 'exit' handler below.
const own: { services?: LocalServices } = {}

// A second Ctrl-C does not wait for the drain.
const onSignal = () => {
  if (stopping) {
    for (const { proc } of children) proc.kill('SIGKILL')
    return
  }
  void stop(0)
}
process.on('SIGINT', onSignal)
process.on('SIGTERM', onSignal)
// Whatever ends this process, the children and the services it started do not outlive it.
process.on('exit', () => {
  for (const { proc } of children) if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM')
  own.services?.kill()
})

own.services = await servicesReady
if (!own.services) await new Promise(() => {}) // stop(1) is under way and exits
for (const s of own.services?.started ?? []) {
  console.error(`npm run dev: started ${s.detail} (pid ${s.pid}); Ctrl-C stops it`)
}

try {
  if (!stopping) await migrateDatabase(config.DATABASE_URL)
} catch (err) {
  console.error(`migrate failed: ${(err as Error).message}`)
  await stop(1)
}

const host = config.HOST === '0.0.0.0' || config.HOST === '::' ? '127.0.0.1' : config.HOST
const api = `http://${host.includes(':') ? `[${host}]` : host}:${config.PORT}`
const workerPort = config.WORKER_METRICS_PORT > 0 ? config.WORKER_METRICS_PORT : null

function start(name: string, file: string) {
  if (stopping) return
  const proc = spawn(process.execPath, [path.join(dist, file)], { cwd: root, env, stdio: 'inherit', detached: true })
  children.push({ name, proc })
  proc.once('exit', (code, signal) => {
    if (stopping) return
    console.error(`npm run dev: the ${name} stopped by itself (${signal ?? `exit ${code}`}); stopping the rest`)
    void stop(1)
  })
}

async function stop(code: number): Promise<void> {
  if (stopping) return
  stopping = true
  const exits = children.map(async ({ proc }) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode ?? 1
    proc.kill('SIGTERM')
    const [c] = await once(proc, 'exit')
    return c as number | null
  })
  const codes = await Promise.all(exits)
  const clean = code === 0 && codes.every((c) => c === 0)
  if (children.length > 0) {
    const exited = children.map((c, i) => `${c.name} exited ${codes[i]}`).join(', ')
    console.error(`npm run dev: ${exited}${clean ? '' : ' (not clean)'}`)
  }
  // Last: the API and the worker have drained into them.
  const services = await servicesReady
  if (services && services.started.length > 0) {
    await services.stop()
    console.error(`npm run dev: stopped ${services.started.map((s) => s.name).join(' and ')}`)
  }
  process.exit(clean ? 0 : 1)
}

start('API', 'src/server.js')
start('worker', 'src/worker/main.js')

try {
  await Promise.all([waitReady(`${api}/readyz`), workerPort ? waitReady(`http://${host}:${workerPort}/readyz`) : Promise.resolve()])
} catch (err) {
  console.error(`npm run dev: ${(err as Error).message}`)
  await stop(1)
}
if (!stopping) process.stdout.write(banner())

async function waitReady(url: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!stopping) {
    const ok = await fetch(url, { signal: AbortSignal.timeout(2000) }).then((r) => r.ok, () => false)
    if (ok) return
    if (Date.now() > deadline) throw new Error(`${url} not ready after ${timeoutMs / 1000} s`)
    await new Promise((r) => setTimeout(r, 200))
  }
}

function banner(): string {
  const db = new URL(config.DATABASE_URL)
  db.password = db.password ? '***' : ''
  const lines = [
    '',
    'fcfs is running: the API and one worker (Ctrl-C stops both)',
    `  API       ${api}  (OpenAPI: ${api}/docs)`,
    `  worker    ${workerPort ? `http://${host}:${workerPort}/metrics` : 'running (WORKER_METRICS_PORT gives it no fixed port)'}`,
    `  data      ${db.toString()}, ${config.REDIS_URL} (key prefix ${config.KEY_PREFIX})`,
    ...(own.services?.started ?? []).map((s) => `  started   ${s.detail} (pid ${s.pid}), stopped by Ctrl-C`),
    '',
    'Try it from another shell in this directory:',
    '',
    trySequence(api, defaulted.length > 0 ? defaulted : null),
    '',
  ]
  return `${lines.join('\n')}\n`
}

/** The README's "Try it" block: README.md and this output are compared by test/dev.test.ts. */
function trySequence(base: string, defaults: ('ADMIN_TOKEN' | 'JWT_SECRET')[] | null): string {
  const secrets = defaults
    ? ['# development secrets (npm run dev only; refused when NODE_ENV=production)',
        `export ${defaults.map((k) => `${k}=${DEV_SECRETS[k]}`).join(' ')}`]
    : ['# uses ADMIN_TOKEN and JWT_SECRET from your environment']
  return [
    ...secrets,
    `API=${base}`,
    '# an admin creates a campaign with one coupon',
    'ID=$(curl -s -X POST $API/admin/campaigns -H "authorization: Bearer $ADMIN_TOKEN" \\',
    '  -H \'content-type: application/json\' -d \'{"name":"launch coupon","stock":1}\' | jq -r .id)',
    '# two users claim it: alice gets sequence 1 (201), bob gets 410 SOLD_OUT',
    'curl -s -X POST $API/v1/campaigns/$ID/claims -H "authorization: Bearer $(npm run -s token -- alice)"; echo',
    'curl -s -X POST $API/v1/campaigns/$ID/claims -H "authorization: Bearer $(npm run -s token -- bob)"; echo',
    '# a moment later the worker has stored alice\'s claim in PostgreSQL: status "persisted"',
    'sleep 1',
    'curl -s $API/v1/campaigns/$ID/claims/me -H "authorization: Bearer $(npm run -s token -- alice)"; echo',
  ].join('\n')
}

/** dist/ is built once (npm ci runs `prepare`); after editing the source, `npm run build` again. */
function warnIfStale(): void {
  const stamp = path.join(dist, '.build-stamp')
  if (!existsSync(stamp)) return
  const built = statSync(stamp).mtimeMs
  const newer = (dir: string): boolean => existsSync(dir) && readdirSync(dir, { withFileTypes: true }).some((e) => {
    const p = path.join(dir, e.name)
    return e.isDirectory() ? newer(p) : /\.(ts|lua)$/.test(e.name) && statSync(p).mtimeMs > built
  })
  if (['src', 'scripts'].some((d) => newer(path.join(root, d)))) {
    console.error('npm run dev: the source changed since the last build; this runs the old build (run `npm run ' +
      'build` first)')
  }
}
