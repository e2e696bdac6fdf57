import t from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { networkInterfaces, tmpdir } from 'node:os'
import path from 'node:path'
import { testEnv, freePort, waitForOutput, ROOT, http, signJwt } from './helper.js'
import { DEV_SECRETS, loadConfig } from '../src/config.js'
import { createKeys } from '../src/redis/keys.js'

/** The README's Try-it block: the first ```sh fence after the `<!-- try-it -->` marker. */
function readmeTryIt(): string {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8')
  const m = /<!-- try-it[^>]*-->\s*```sh\n([\s\S]*?)```/.exec(readme)
  if (!m) throw new Error('README.md has no <!-- try-it --> block')
  return m[1]!.trimEnd()
}

// The environment a newcomer has: none of the project's variables, so every default applies.
function cleanEnv(extra: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !/^(NODE_ENV|ADMIN_TOKEN|JWT_|TRUSTED_USER_HEADER|METRICS_|RATE_LIMIT_|CORS_ORIGINS)/.test(k)) env[k] = v
  }
  return { ...env, ...extra }
}

t.test("README's Try it, run against `npm run dev`", async (t) => {
  const { config, env: testVars, sql, redis } = await testEnv(t)
  const [port, workerPort] = [await freePort(), await freePort()]
  const env = cleanEnv({
    DATABASE_URL: testVars.DATABASE_URL!, KEY_PREFIX: testVars.KEY_PREFIX!, PORT: String(port), WORKER_METRICS_PORT: String(workerPort), LOG_LEVEL: 'warn',
  })
  // Its own process group, as in a terminal: Ctrl-C is a SIGINT to the whole group.
  const dev = spawn('npm', ['run', '-s', 'dev'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  let stdout = ''
  dev.stdout.on('data', (d) => { stdout += d })
  t.teardown(() => { if (dev.exitCode === null) { try { process.kill(-dev.pid!, 'SIGKILL') } catch { /* gone */ } } })
  await waitForOutput(dev, /claims\/me[^\n]*\n/, 120_000)

  const api = `http://127.0.0.1:${port}`
  const printed = stdout.slice(stdout.indexOf('# development secrets')).trimEnd()
  const readme = readmeTryIt()
  t.equal(printed, readme.replace('API=http://127.0.0.1:3000', `API=${api}`), 'npm run dev prints the README block (with its own URL)')
  t.match(stdout, `${api}/docs`, 'prints the API docs URL')
  t.match(stdout, `http://127.0.0.1:${workerPort}/metrics`, "prints the worker's metrics URL")

  const r = spawnSync('bash', ['-euo', 'pipefail', '-c', readme.replace('API=http://127.0.0.1:3000', `API=${api}`)], { cwd: ROOT, env, encoding: 'utf8', timeout: 180_000 })
  t.equal(r.status, 0, `the block runs: ${r.stderr}`)
  const [won, lost, mine] = r.stdout.trim().split('\n').map((l) => JSON.parse(l))
  t.match(won, { sequence: 1, userId: 'alice' }, 'alice gets sequence 1')
  t.match(lost, { statusCode: 410, code: 'SOLD_OUT' }, 'bob is too late')
  t.match(mine, { claims: [{ sequence: 1, status: 'persisted' }] }, "alice's claim is persisted by the worker")
  const rows = await sql`SELECT user_id, sequence FROM claims`
  t.same(rows.map((x) => [x.user_id, Number(x.sequence)]), [['alice', 1]], 'one row in PostgreSQL')
  const keys = createKeys(config.KEY_PREFIX, config.STREAM_PARTITIONS)
  t.equal(await redis.hget(keys.campaign(String(won.campaignId)), 'issued'), '1')

  // Ctrl-C: both processes drain and exit 0. (npm itself then dies of the SIGINT, as after any Ctrl-C.)
  let stderr = ''
  dev.stderr.on('data', (d) => { stderr += d })
  process.kill(-dev.pid!, 'SIGINT')
  // 'close': every process holding its output (npm, dev, the API, the worker) has ended.
  const [code, signal] = await once(dev, 'close')
  t.ok(code === 0 || signal === 'SIGINT', `npm exits after Ctrl-C (${code}, ${signal})`)
  t.match(stderr, /API exited 0, worker exited 0\n/, 'the API and the worker exited 0')
  const stillUp = async (url: string) => fetch(url, { signal: AbortSignal.timeout(2000) }).then(() => true, () => false)
  t.notOk(await stillUp(`${api}/healthz`), 'the API stopped')
  t.notOk(await stillUp(`http://127.0.0.1:${workerPort}/healthz`), 'the worker stopped')
})

t.test('nothing answers at loopback URLs: npm run dev starts an embedded PostgreSQL and a redis-server, and stops them', async (t) => {
  const [pgPort, redisPort, port, workerPort] = [await freePort(), await freePort(), await freePort(), await freePort()]
  const dir = mkdtempSync(path.join(tmpdir(), 'fcfs-dev-'))
  chmodSync(dir, 0o755) // run as root, PostgreSQL runs as another user and needs to reach its data folder
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const env = cleanEnv({
    DATABASE_URL: `postgres://postgres@127.0.0.1:${pgPort}/fcfs_dev`, REDIS_URL: `redis://127.0.0.1:${redisPort}`,
    DEV_DATA_DIR: dir, PORT: String(port), WORKER_METRICS_PORT: String(workerPort), LOG_LEVEL: 'warn',
  })
  const dev = spawn(process.execPath, [path.join(ROOT, 'dist/scripts/dev.js')], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  let stdout = ''
  let stderr = ''
  dev.stdout.on('data', (d) => { stdout += d })
  dev.stderr.on('data', (d) => { stderr += d })
  const pids: number[] = []
  t.teardown(() => {
    for (const pid of [-dev.pid!, ...pids]) { try { process.kill(pid, 'SIGKILL') } catch { /* gone */ } }
  })
  await waitForOutput(dev, /claims\/me[^\n]*\n/, 120_000)
  for (const m of stdout.matchAll(/started +(PostgreSQL|redis-server) on 127\.0\.0\.1:(\d+).*\(pid (\d+)\)/g)) {
    t.equal(Number(m[2]), m[1] === 'PostgreSQL' ? pgPort : redisPort, `${m[1]} on the configured port`)
    pids.push(Number(m[3]))
  }
  t.equal(pids.length, 2, `the banner names both started processes: ${stdout}${stderr}`)

  const api = `http://127.0.0.1:${port}`
  const admin = { authorization: `Bearer ${DEV_SECRETS.ADMIN_TOKEN}` }
  const created = await http(`${api}/admin/campaigns`, { method: 'POST', headers: admin, body: { name: 'fresh machine', stock: 1 } })
  t.equal(created.status, 201, JSON.stringify(created.body))
  const token = signJwt({ sub: 'alice', exp: Math.floor(Date.now() / 1000) + 600 }, { secret: DEV_SECRETS.JWT_SECRET })
  const won = await http(`${api}/v1/campaigns/${created.body.id}/claims`, { method: 'POST', headers: { authorization: `Bearer ${token}` } })
  t.match(won, { status: 201, body: { sequence: 1, userId: 'alice' } }, 'a claim works through them')

  process.kill(-dev.pid!, 'SIGINT')
  const [code] = await once(dev, 'close')
  t.equal(code, 0, `dev exits 0: ${stderr}`)
  t.match(stderr, /API exited 0, worker exited 0\nnpm run dev: stopped PostgreSQL and redis-server\n/, 'the services stop after the API and the worker')
  for (const pid of pids) t.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, `process ${pid} is gone`)
})

t.test('Redis does not answer and redis-server is not on PATH: one line says what to install', async (t) => {
  const redisPort = await freePort()
  const r = spawnSync(process.execPath, [path.join(ROOT, 'dist/scripts/dev.js')], { cwd: ROOT, env: cleanEnv({ PATH: '/nonexistent', DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/postgres', REDIS_URL: `redis://127.0.0.1:${redisPort}` }), encoding: 'utf8', timeout: 60_000 })
  t.equal(r.status, 1)
  t.equal(r.stderr, `npm run dev: Redis is not reachable at redis://127.0.0.1:${redisPort} and redis-server is not on PATH: install it (Debian: apt-get install redis-server; macOS: brew install redis) or set REDIS_URL\n`)
})

// A non-loopback address of this host: nothing there answers, and dev must not start a server for it.
const ownAddress = Object.values(networkInterfaces()).flat().find((a) => a && a.family === 'IPv4' && !a.internal)?.address
t.test('a non-loopback URL where nothing answers is an error line, nothing is started', { skip: !ownAddress && 'no non-loopback IPv4 address' }, async (t) => {
  const pgPort = await freePort()
  const url = `postgres://postgres@${ownAddress}:${pgPort}/fcfs`
  const r = spawnSync(process.execPath, [path.join(ROOT, 'dist/scripts/dev.js')], { cwd: ROOT, env: cleanEnv({ DATABASE_URL: url, DEV_DATA_DIR: '/nonexistent/fcfs-dev' }), encoding: 'utf8', timeout: 60_000 })
  t.equal(r.status, 1)
  t.equal(r.stderr, `npm run dev: PostgreSQL is not reachable at ${url}: start it or set DATABASE_URL (npm run dev starts one itself only for a loopback URL)\n`)
})

t.test('npm run dev refuses NODE_ENV=production, and the API refuses its secrets there', async (t) => {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'dist/scripts/dev.js')], { cwd: ROOT, env: cleanEnv({ NODE_ENV: 'production', REDIS_URL: 'redis://127.0.0.1:1' }), encoding: 'utf8', timeout: 60_000 })
  t.equal(r.status, 1)
  t.match(r.stderr, /NODE_ENV=production/)
  t.throws(() => loadConfig({ NODE_ENV: 'production', ...DEV_SECRETS }), /ADMIN_TOKEN: the npm run dev default is refused[\s\S]*JWT_SECRET: the npm run dev default is refused/)
  t.doesNotThrow(() => loadConfig({ NODE_ENV: 'development', ...DEV_SECRETS }), 'allowed in development')
})
