import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, openSync, closeSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import net from 'node:net'

const HERE = path.dirname(fileURLToPath(import.meta.url))
/** Built (`npm run bench` runs dist/bench/main.js) or run from source with tsx (the test suite). */
const COMPILED = import.meta.url.endsWith('.js')
/** dist/ when built, the repository root under tsx: entry points keep their relative paths in both. */
const BASE = path.resolve(HERE, '..')

/**
 * Node arguments that run an entry point given without extension, e.g. 'src/server', with the module
 * resolution fast path (src/esm-fast-path.ts: a process starts in about half the CPU).
 */
function entryArgs(rel: string): string[] {
  return COMPILED
    ? ['--import', path.join(BASE, 'src/esm-fast-path.js'), path.join(BASE, `${rel}.js`)]
    : ['--import', 'tsx', '--import', path.join(BASE, 'src/esm-fast-path.ts'), path.join(BASE, `${rel}.ts`)]
}

export const entryExists = (rel: string) => existsSync(path.join(BASE, `${rel}${COMPILED ? '.js' : '.ts'}`))

export interface Child {
  name: string
  child: ChildProcess
  /** SIGTERM, then SIGKILL if it has not exited after graceMs. Safe to call twice. */
  stop(graceMs?: number): Promise<number | null>
}

const running = new Set<Child>()

export interface SpawnOpts {
  env: Record<string, string>
  /** Where stdout and stderr go: a file (so the orchestrator spends no CPU reading logs). */
  logFile: string
  nodeArgs?: string[]
  ipc?: boolean
}

export function spawnNode(name: string, rel: string, opts: SpawnOpts): Child {
  const fd = openSync(opts.logFile, 'a')
  const stdio: StdioOptions = opts.ipc ? ['ignore', fd, fd, 'ipc'] : ['ignore', fd, fd]
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), ...entryArgs(rel)], {
    env: { ...process.env, ...opts.env },
    stdio,
  })
  closeSync(fd)
  const exited = once(child, 'exit').then(([code]) => code as number | null)
  const handle: Child = {
    name,
    child,
    async stop(graceMs = 10_000) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM')
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
        await exited
        clearTimeout(timer)
      }
      running.delete(handle)
      return child.exitCode
    },
  }
  running.add(handle)
  return handle
}

/** Kills whatever is still running (on error or Ctrl-C). */
export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((c) => c.stop(3_000)))
}

/**
 * Resolves once url answers with a status `accept` takes (any status by default); rejects if the process
 * exits first. The deadline only bounds a hang: a cold tsx start of the whole app on a busy 2-core box took
 * over 20 s.
 */
export async function waitForHttp(url: string, child: Child, timeoutMs = 90_000,
  accept: (status: number) => boolean = () => true): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (child.child.exitCode !== null) throw new Error(`${child.name} exited with code ${child.child.exitCode} before listening`)
    const status = await fetch(url, { signal: AbortSignal.timeout(1_000) }).then((r) => r.status, () => null)
    if (status !== null && accept(status)) return
    await sleep(50)
  }
  throw new Error(`${child.name} did not answer as expected at ${url} within ${timeoutMs} ms`)
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.on('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      srv.close(() => (addr && typeof addr !== 'string' ? resolve(addr.port) : reject(new Error('no port'))))
    })
  })
}
