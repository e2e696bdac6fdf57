/**
 * npm run bench:live -- [--viewers 100] [--rounds 3] [--duration 8] [--connections 50]
 *
 * Does the live feed slow claims? One API process, one campaign with more stock than the run can issue
 * (every claim is a 201 that writes to Redis and its stream), claim throughput measured by autocannon in
 * alternating rounds with 0 and with N open viewers of that campaign's feed (GET
 * /admin/campaigns/:id/live, read as the page reads it, from a process of their own). Alternating rounds
 * in the same run cancel most
 * of the drift of a shared machine; the figure is the ratio of the medians (1.00 = no difference).
 * Everything it starts (API, private database, key prefix) is removed at the end.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { randomBytes } from 'node:crypto'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import { Redis } from 'ioredis'
import { loadConfigOrExit } from '../src/config.js'
import { dropDatabase, migrateDatabase } from '../src/db/migrate.js'
import { cpuSeconds } from './cpu-usage.js'

const { values: args } = parseArgs({
  options: {
    viewers: { type: 'string', default: '100' },
    rounds: { type: 'string', default: '3' },
    duration: { type: 'string', default: '8' },
    connections: { type: 'string', default: '50' },
    help: { type: 'boolean', short: 'h' },
  },
})
if (args.help) {
  console.log('npm run bench:live -- [--viewers 100] [--rounds 3] [--duration 8] [--connections 50]')
  process.exit(0)
}
const VIEWERS = Number(args.viewers)
const ROUNDS = Number(args.rounds)
const DURATION = Number(args.duration)
const CONNECTIONS = Number(args.connections)
for (const [k, v] of Object.entries({ VIEWERS, ROUNDS, DURATION, CONNECTIONS })) {
  if (!Number.isInteger(v) || v < (k === 'VIEWERS' ? 0 : 1)) { console.error(`--${k.toLowerCase()}: a positive integer`); process.exit(2) }
}

const config = loadConfigOrExit('script', 2)

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const runId = randomBytes(4).toString('hex')
const prefix = `benchlive${runId}`
const dbUrl = new URL(config.DATABASE_URL)
dbUrl.pathname = `/fcfs_benchlive_${runId}`
const adminToken = randomBytes(24).toString('hex')
const log = (s: string) => process.stderr.write(`${s}\n`)

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address()
      srv.close(() => (a && typeof a !== 'string' ? resolve(a.port) : reject(new Error('no port'))))
    })
  })
}

/** Asks the viewers' process and waits for its answer of the given type. */
function ask<T>(child: ChildProcess, message: object, answer: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: { type: string; message?: string }) => {
      if (m.type === answer) { child.off('message', onMessage); resolve(m as T) }
      if (m.type === 'error') { child.off('message', onMessage); reject(new Error(m.message)) }
    }
    child.on('message', onMessage)
    child.send(message)
  })
}

let userSeq = 0
interface Round { rps: number; p99: number; non201: number; cpuUsPerClaim: number | null }

/**
 * One autocannon round; also the API process's CPU per claim, which a busy shared machine disturbs less
 * than throughput.
 */
async function claims(url: string, id: string): Promise<Round> {
  const cpu0 = cpuSeconds(api.pid)
  const r = await autocannonRound(url, id)
  const cpu1 = cpuSeconds(api.pid)
  const n = r.rps * DURATION
  return { ...r, cpuUsPerClaim: cpu0 === null || cpu1 === null || n === 0 ? null : ((cpu1 - cpu0) * 1e6) / n }
}

function autocannonRound(url: string, id: string): Promise<{ rps: number; p99: number; non201: number }> {
  return new Promise((resolve, reject) => {
    autocannon({
      url: `${url}/v1/campaigns/${id}/claims`, method: 'POST', connections: CONNECTIONS, duration: DURATION,
      requests: [{ setupRequest: (req) => ({ ...req, headers: { 'x-user-id': `u${runId}-${userSeq++}` } }) }],
    }, (err, r) => {
      if (err) return reject(err)
      resolve({ rps: r.requests.average, p99: r.latency.p99, non201: r.non2xx + r.errors })
    })
  })
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}

const redis = new Redis(config.REDIS_URL)
const port = await freePort()
const url = `http://127.0.0.1:${port}`
await migrateDatabase(dbUrl.toString())
const api = spawn(process.execPath, [path.join(ROOT, 'dist/src/server.js')], {
  env: {
    ...process.env, PORT: String(port), HOST: '127.0.0.1', DATABASE_URL: dbUrl.toString(), KEY_PREFIX: prefix, ADMIN_TOKEN: adminToken,
    TRUSTED_USER_HEADER: 'x-user-id', RATE_LIMIT_USER_MAX: '0', RATE_LIMIT_IP_MAX: '0', LOG_LEVEL: 'warn', NODE_ENV: 'production', LIVE_INTERVAL_MS: '1000',
  },
  stdio: ['ignore', 'ignore', 'inherit'],
})
const exited = once(api, 'exit')
const viewersProc = fork(path.join(ROOT, 'dist/bench/live-viewers-client.js'), [], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] })

async function cleanup() {
  viewersProc.disconnect()
  if (api.exitCode === null) { api.kill('SIGTERM'); await exited }
  let cursor = '0'
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000)
    cursor = next
    if (keys.length) await redis.unlink(...keys)
  } while (cursor !== '0')
  redis.disconnect()
  await dropDatabase(dbUrl.toString())
}

try {
  for (let i = 0; ; i++) {
    if (i > 200) throw new Error('the API did not start')
    if (await fetch(`${url}/healthz`).then((r) => r.ok, () => false)) break
    await new Promise((r) => setTimeout(r, 100))
  }
  const created = await fetch(`${url}/admin/campaigns`, {
    method: 'POST', headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'bench live viewers', stock: 100_000_000 }),
  })
  const { id } = (await created.json()) as { id: string }
  log(`live-viewers bench: API ${url}, campaign ${id}, ${ROUNDS} rounds x (0 | ${VIEWERS} viewers), ${DURATION} s each, ${CONNECTIONS} connections`)
  await claims(url, id) // warm-up: JIT, connection pools, script cache

  const results: Record<'without' | 'with', Round[]> = { without: [], with: [] }
  for (let r = 0; r < ROUNDS; r++) {
    const base = await claims(url, id)
    results.without.push(base)
    log(`round ${r + 1}: 0 viewers: ${base.rps.toFixed(0)} claims/s, p99 ${base.p99} ms, API CPU ${base.cpuUsPerClaim?.toFixed(0)} µs/claim${base.non201 ? ` (${base.non201} non-2xx)` : ''}`)
    if (VIEWERS > 0) await ask(viewersProc, { type: 'open', url, id, token: adminToken, viewers: VIEWERS }, 'opened')
    await new Promise((res) => setTimeout(res, 1500)) // every viewer has had a snapshot
    const watched = await claims(url, id)
    results.with.push(watched)
    const counter = VIEWERS > 0 ? await ask<{ events: number }>(viewersProc, { type: 'close' }, 'closed') : { events: 0 }
    log(`round ${r + 1}: ${VIEWERS} viewers: ${watched.rps.toFixed(0)} claims/s, p99 ${watched.p99} ms, API CPU ${watched.cpuUsPerClaim?.toFixed(0)} µs/claim; the viewers received ${counter.events} snapshots`)
    if (VIEWERS > 0 && counter.events < VIEWERS * DURATION) log('  warning: fewer snapshots than one per viewer per second')
  }
  const w = median(results.with.map((x) => x.rps))
  const wo = median(results.without.map((x) => x.rps))
  const cw = median(results.with.map((x) => x.cpuUsPerClaim ?? NaN))
  const cwo = median(results.without.map((x) => x.cpuUsPerClaim ?? NaN))
  const table = [
    '| | claims/s (median) | p99 ms (median) | API CPU µs per claim (median) |',
    '|---|---|---|---|',
    `| 0 viewers | ${wo.toFixed(0)} | ${median(results.without.map((x) => x.p99))} | ${cwo.toFixed(0)} |`,
    `| ${VIEWERS} viewers | ${w.toFixed(0)} | ${median(results.with.map((x) => x.p99))} | ${cw.toFixed(0)} |`,
    `| ratio (${VIEWERS} / 0) | **${(w / wo).toFixed(3)}** | | **${(cw / cwo).toFixed(3)}** |`,
    '',
    `load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')} on ${os.cpus().length} CPUs`,
  ]
  console.log(table.join('\n'))
} finally {
  await cleanup()
}
