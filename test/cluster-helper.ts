/**
 * A real Redis Cluster for a test file: 3 masters + 3 replicas as redis-server child processes on free
 * loopback ports (each with its own temp dir), joined by `redis-cli --cluster create`, stopped at teardown.
 * One cluster per test file keeps the suite's time down.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import net from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { setTimeout as sleep } from 'node:timers/promises'
import { Cluster, Redis } from 'ioredis'
import { testEnv, type TestEnv } from './helper.js'

const run = promisify(execFile)

interface Tap { teardown(fn: () => unknown): void }

interface ClusterNode { port: number; dir: string; process: ChildProcess }

interface NodeInfo {
  port: number; id: string; role: 'master' | 'replica'; masterId: string | null; slots: [number, number][]; failed: boolean
}

export interface TestCluster {
  nodes: ClusterNode[]
  /** REDIS_CLUSTER_NODES for the cluster (every node as a seed). */
  seeds: string
  /** A direct connection to one node (closed at teardown). */
  direct: (port: number) => Redis
  /** port -> role and the slot ranges it serves, from CLUSTER NODES as the given node sees it. */
  topology: (viaPort?: number) => Promise<NodeInfo[]>
  /** SIGKILL a node (no shutdown, no save): its unreplicated writes are gone. */
  kill: (port: number) => Promise<void>
  waitHealthy: (timeoutMs?: number) => Promise<void>
}

async function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer()
    srv.once('error', () => resolve(false))
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)))
  })
}

/** Ports p with p and its cluster bus port p+10000 both free. */
async function freeClusterPorts(n: number): Promise<number[]> {
  const ports: number[] = []
  while (ports.length < n) {
    const p = 20000 + Math.floor(Math.random() * 30000)
    if (ports.includes(p) || ports.includes(p + 10000) || ports.includes(p - 10000)) continue
    if (await portFree(p) && await portFree(p + 10000)) ports.push(p)
  }
  return ports
}

async function cli(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { timeout: 30_000 })
  return stdout
}

export async function startCluster(t: Tap,
  opts: { masters?: number; replicas?: number; nodeTimeoutMs?: number } = {}): Promise<TestCluster> {
  const masters = opts.masters ?? 3
  const replicas = opts.replicas ?? 1
  const ports = await freeClusterPorts(masters * (1 + replicas))
  const nodes: ClusterNode[] = []
  const directs: Redis[] = []
  t.teardown(async () => {
    for (const c of directs) c.disconnect()
    await Promise.all(nodes.map(async (n) => {
      if (n.process.exitCode === null && n.process.signalCode === null) {
        n.process.kill('SIGKILL')
        await once(n.process, 'exit')
      }
      await rm(n.dir, { recursive: true, force: true })
    }))
  })
  for (const port of ports) {
    const dir = await mkdtemp(path.join(tmpdir(), `fcfs-cluster-${port}-`))
    const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir,
      '--cluster-enabled', 'yes', '--cluster-config-file', path.join(dir, 'nodes.conf'),
      '--cluster-node-timeout', String(opts.nodeTimeoutMs ?? 2000), '--save', '', '--appendonly', 'no',
      '--maxmemory-policy', 'noeviction', '--logfile', path.join(dir, 'redis.log')], { stdio: 'ignore' })
    nodes.push({ port, dir, process: proc })
  }
  for (const n of nodes) {
    for (let i = 0; ; i++) {
      try { if ((await cli(n.port, 'ping')).trim() === 'PONG') break } catch { /* not up yet */ }
      if (i > 100) throw new Error(`redis-server on ${n.port} did not start`)
      await sleep(50)
    }
  }
  await run('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`),
    '--cluster-replicas', String(replicas), '--cluster-yes'], { timeout: 60_000 })

  const direct = (port: number) => {
    const c = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 1, retryStrategy: () => null })
    c.on('error', () => {})
    directs.push(c)
    return c
  }

  const topology: TestCluster['topology'] = async (viaPort) => {
    const alive = nodes.filter((n) => n.process.exitCode === null && n.process.signalCode === null)
    const text = await cli(viaPort ?? alive[0]!.port, 'cluster', 'nodes')
    return text.trim().split('\n').map((line) => {
      const [id, addr, flags, masterId, , , , , ...slots] = line.split(' ')
      return {
        id: id!,
        port: Number(addr!.split('@')[0]!.split(':')[1]),
        role: flags!.includes('master') ? 'master' as const : 'replica' as const,
        masterId: masterId === '-' ? null : masterId!,
        failed: /fail/.test(flags!),
        slots: slots.filter((s) => /^\d/.test(s)).map((s) => {
          const [a, b] = s.split('-').map(Number)
          return [a!, b ?? a!] as [number, number]
        }),
      }
    })
  }

  const waitHealthy = async (timeoutMs = 30_000) => {
    const end = Date.now() + timeoutMs
    for (;;) {
      const alive = nodes.filter((n) => n.process.exitCode === null && n.process.signalCode === null)
      const states = await Promise.all(alive.map((n) => cli(n.port, 'cluster', 'info')
        .then((s) => /cluster_state:ok/.test(s), () => false)))
      // Replicas in sync with their masters, so a kill loses only what was written after this point.
      const links = await Promise.all(alive.map((n) => cli(n.port, 'info', 'replication')
        .then((s) => !/role:slave/.test(s) || /master_link_status:up/.test(s), () => false)))
      if (states.every(Boolean) && links.every(Boolean)) return
      if (Date.now() > end) throw new Error('cluster did not become healthy')
      await sleep(100)
    }
  }
  await waitHealthy()

  return {
    nodes,
    seeds: ports.map((p) => `127.0.0.1:${p}`).join(','),
    direct,
    topology,
    async kill(port) {
      const n = nodes.find((x) => x.port === port)!
      n.process.kill('SIGKILL')
      await once(n.process, 'exit')
    },
    waitHealthy,
  }
}

export interface ClusterTestEnv extends Omit<TestEnv, 'redis'> {
  /** A cluster client for assertions (not the app's). */
  redis: Cluster
}

/** testEnv (own database and prefix) with every role pointed at the cluster. */
export async function clusterEnv(t: Tap, cluster: TestCluster,
  overrides: Record<string, string> = {}): Promise<ClusterTestEnv> {
  const base = await testEnv(t, { REDIS_CLUSTER_NODES: cluster.seeds, ...overrides })
  const seeds = cluster.seeds.split(',').map((s) => ({ host: '127.0.0.1', port: Number(s.split(':')[1]) }))
  const redis = new Cluster(seeds, {
    redisOptions: { maxRetriesPerRequest: 2 },
    retryDelayOnFailover: 200,
  })
  redis.on('error', () => {})
  t.teardown(() => redis.disconnect())
  return { ...base, redis }
}
