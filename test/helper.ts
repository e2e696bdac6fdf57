/**
 * Test helpers: each test file gets its own database and Redis key prefix (so tap can run files in
 * parallel) and builds the app exactly as production does, listening on a real loopback port.
 */
import { createHmac, randomBytes } from 'node:crypto'
import type { ChildProcess } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import postgres from 'postgres'
import { Redis } from 'ioredis'
import type { FastifyInstance } from 'fastify'
import { loadConfig, type Config } from '../src/config.js'
import { dropDatabase, migrateDatabase } from '../src/db/migrate.js'
import { buildApp } from '../src/app.js'
import { entryArgs, startProcess } from './process.js'

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
export const ADMIN_TOKEN = 'test-admin-token-0123456789'
export const JWT_SECRET = 'test-jwt-secret-0123456789abcdef'
const PG_BASE = process.env.TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432'
const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'

interface Tap { teardown(fn: () => unknown): void }

export interface TestEnv {
  config: Config
  env: Record<string, string>
  /** A Redis connection for assertions (not the app's). */
  redis: Redis
  sql: postgres.Sql
}

/** A private database (migrated) and key prefix, dropped and deleted at teardown. */
export async function testEnv(t: Tap, overrides: Record<string, string> = {}): Promise<TestEnv> {
  const id = randomBytes(4).toString('hex')
  const dbName = `fcfs_test_${id}`
  const env: Record<string, string> = {
    NODE_ENV: 'test',
    DATABASE_URL: `${PG_BASE}/${dbName}`,
    REDIS_URL,
    KEY_PREFIX: `t${id}`,
    ADMIN_TOKEN,
    JWT_SECRET,
    LOG_LEVEL: 'silent',
    // Deadlines for a shared, busy test machine (seconds-long stalls happen there); the tests of these
    // deadlines (test/hardening-*.test.ts, test/pg-trouble.test.ts) set the production values explicitly.
    REDIS_COMMAND_TIMEOUT_MS: '5000',
    PG_CONNECT_TIMEOUT_MS: '10000',
    PG_STATEMENT_TIMEOUT_MS: '10000',
    HTTP_HEADERS_TIMEOUT_MS: '60000',
    HTTP_REQUEST_TIMEOUT_MS: '120000',
    // Off unless a test turns it on (test/recovery-*.test.ts, cluster-failover): the reconcile tests build
    // drift on purpose and look at it; automatic recovery would repair it under them.
    RECOVERY_INTERVAL_MS: '0',
    ...overrides,
  }
  const config = loadConfig(env)
  await migrateDatabase(config.DATABASE_URL)
  const redis = new Redis(config.REDIS_URL)
  const sql = postgres(config.DATABASE_URL, { max: 4, onnotice: () => {}, types: { bigint: postgres.BigInt } })
  t.teardown(async () => {
    await deleteKeys(redis, `${config.KEY_PREFIX}:*`)
    redis.disconnect()
    await sql.end({ timeout: 5 })
    await dropDatabase(config.DATABASE_URL)
  })
  return { config, env, redis, sql }
}

export async function deleteKeys(redis: Redis, pattern: string): Promise<void> {
  let cursor = '0'
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000)
    cursor = next
    if (keys.length) await redis.unlink(...keys)
  } while (cursor !== '0')
}

/** Builds the app with the production builder and listens on an ephemeral loopback port. */
export async function startApp(t: Tap, config: Config): Promise<{ app: FastifyInstance; url: string }> {
  const app = await buildApp(config)
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const addr = app.server.address()
  if (!addr || typeof addr === 'string') throw new Error('no address')
  return { app, url: `http://127.0.0.1:${addr.port}` }
}

/** Starts the real server entry point in a child process (the build), resolves once it listens. */
export async function spawnServer(t: Tap, env: Record<string, string>, port: number,
  startTimeoutMs = 60_000): Promise<{ child: ChildProcess; url: string }> {
  const { child } = startProcess(t, entryArgs('src/server'), { ...env, PORT: String(port), HOST: '127.0.0.1',
    LOG_LEVEL: env.LOG_LEVEL && env.LOG_LEVEL !== 'silent' ? env.LOG_LEVEL : 'info' })
  // Only bounds a hang: process start-up is slow on a busy machine.
  await waitForOutput(child, /Server listening/, startTimeoutMs)
  return { child, url: `http://127.0.0.1:${port}` }
}

export function waitForOutput(child: ChildProcess, re: RegExp, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = ''
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${re}; output:\n${buf}`)), timeoutMs)
    const onData = (d: Buffer) => {
      buf += d.toString()
      const m = re.exec(buf)
      if (m) {
        clearTimeout(timer)
        child.stdout?.off('data', onData)
        child.stderr?.off('data', onData)
        resolve(buf)
      }
    }
    child.stdout?.on('data', onData)
    child.stderr?.on('data', onData)
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`process exited (${code}) before ${re}; output:\n${buf}`)) })
  })
}

export async function freePort(): Promise<number> {
  const net = await import('node:net')
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      srv.close(() => (addr && typeof addr !== 'string' ? resolve(addr.port) : reject(new Error('no port'))))
    })
  })
}

const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url')

/** Signs an HS256 JWT (or a deliberately broken one) without going through the app. */
export function signJwt(payload: Record<string, unknown>, opts: { secret?: string; alg?: string } = {}): string {
  const alg = opts.alg ?? 'HS256'
  const head = b64({ alg, typ: 'JWT' })
  const body = b64(payload)
  if (alg === 'none') return `${head}.${body}.`
  const sig = createHmac('sha256', opts.secret ?? JWT_SECRET).update(`${head}.${body}`).digest('base64url')
  return `${head}.${body}.${sig}`
}

export const userToken = (sub: string) => signJwt({ sub, exp: Math.floor(Date.now() / 1000) + 3600 })

export interface Res { status: number; body: any; headers: Headers }

export async function http(url: string, init: {
  method?: string; token?: string; admin?: boolean; body?: unknown; headers?: Record<string, string>
} = {}): Promise<Res> {
  const headers: Record<string, string> = { ...init.headers }
  if (init.admin) headers.authorization = `Bearer ${ADMIN_TOKEN}`
  if (init.token) headers.authorization = `Bearer ${init.token}`
  let body: string | undefined
  if (init.body !== undefined) {
    body = typeof init.body === 'string' ? init.body : JSON.stringify(init.body)
    headers['content-type'] ??= 'application/json'
  }
  const res = await fetch(url, { method: init.method ?? (body ? 'POST' : 'GET'), headers, body })
  const text = await res.text()
  let parsed: unknown = text
  try { parsed = JSON.parse(text) } catch { /* not JSON */ }
  return { status: res.status, body: parsed, headers: res.headers }
}

export async function createCampaign(url: string, body: Record<string, unknown>): Promise<string> {
  const res = await http(`${url}/admin/campaigns`, { method: 'POST', admin: true, body })
  if (res.status !== 201) throw new Error(`create campaign failed: ${res.status} ${JSON.stringify(res.body)}`)
  return res.body.id
}

export const claim = (url: string, campaignId: string, user: string, headers?: Record<string, string>) =>
  http(`${url}/v1/campaigns/${campaignId}/claims`, { method: 'POST', token: userToken(user), headers })

/** The one row a query returns (fails the test when there is none). */
export function one<T>(rows: readonly T[]): T {
  if (rows.length === 0) throw new Error('expected a row, got none')
  return rows[0] as T
}

export function countBy<T>(items: T[], key: (x: T) => string | number): Record<string, number> {
  const out: Record<string, number> = {}
  for (const x of items) { const k = String(key(x)); out[k] = (out[k] ?? 0) + 1 }
  return out
}
