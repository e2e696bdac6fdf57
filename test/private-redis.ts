/**
 * A private redis-server for tests that need settings the shared one must never get (eviction policy,
 * maxmemory, ACL users, replicas, kill/stop/restart). Own loopback port and own --dir; stopped at teardown.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { Redis } from 'ioredis'
import { freePort, waitForOutput } from './helper.js'

interface Tap { teardown(fn: () => unknown): void }

export interface PrivateRedis {
  port: number
  url: string
  dir: string
  child: ChildProcess
  /** An admin connection (default user) for setting up and asserting. */
  admin: Redis
  stop(): Promise<void>
  /** Starts the server again on the same port and dir (after stop()), with the same arguments. */
  restart(extra?: string[]): Promise<void>
}

export async function startPrivateRedis(t: Tap, args: string[] = [],
  opts: { waitReady?: boolean } = {}): Promise<PrivateRedis> {
  const port = await freePort()
  const dir = mkdtempSync(path.join(tmpdir(), 'fcfs-redis-'))
  const launch = async (extra: string[]) => {
    const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '',
      '--appendonly', 'no', ...args, ...extra],
    { stdio: ['ignore', 'pipe', 'pipe'] })
    await waitForOutput(child, opts.waitReady === false ? /Server initialized|Ready to accept/ : /Ready to accept connections/, 10_000)
    return child
  }
  const r: PrivateRedis = {
    port, dir, url: `redis://127.0.0.1:${port}`,
    child: await launch([]),
    admin: new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1, retryStrategy: () => 100, lazyConnect: true }),
    async stop() {
      const c = r.child
      if (c.exitCode !== null || c.signalCode !== null) return
      c.kill('SIGKILL') // also ends a SIGSTOPped server
      await once(c, 'exit')
    },
    async restart(extra = []) {
      await r.stop()
      r.child = await launch(extra)
    },
  }
  r.admin.on('error', () => {})
  await r.admin.connect().catch(() => {})
  t.teardown(async () => {
    r.admin.disconnect()
    await r.stop()
    rmSync(dir, { recursive: true, force: true })
  })
  return r
}
