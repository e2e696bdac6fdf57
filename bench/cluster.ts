/**
 * A local Redis Cluster on loopback: redis-server child processes on free ports (each with its own temp dir),
 * joined by `redis-cli --cluster create`. Used by `npm run bench -- --cluster` and by the cluster tests
 * (test/cluster-helper.ts); the caller stops it (stop() SIGKILLs every node and removes their dirs).
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import net from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { setTimeout as sleep } from 'node:timers/promises'

const run = promisify(execFile)

interface ClusterNode { port: number; dir: string; process: ChildProcess }

interface NodeInfo {
  port: number; id: string; role: 'master' | 'replica'; masterId: string | null; slots: [number, number][]; failed: boolean
}

export interface LocalCluster {
  nodes: ClusterNode[]
  /** REDIS_CLUSTER_NODES for the cluster (every node as a seed). */
  seeds: string
  /** Role, master and slot ranges of every node, from CLUSTER NODES as the given (or a live) node sees it. */
  topology: (viaPort?: number) => Promise<NodeInfo[]>
  /** The node (master) serving a slot, as a live node sees it. */
  ownerOf: (slot: number, viaPort?: number) => Promise<NodeInfo>
  /** Sends a signal to a node (SIGSTOP/SIGCONT freeze and thaw it); SIGKILL waits for the exit. */
  signal: (port: number, sig: NodeJS.Signals) => Promise<void>
  /** Starts a killed node again on its port and dir (its nodes.conf: it rejoins, as a replica if replaced). */
  restart: (port: number) => Promise<void>
  /** Every live node answers cluster_state:ok and every replica's link to its master is up. */
  waitHealthy: (timeoutMs?: number) => Promise<void>
  /** SIGKILLs every node still running and removes their directories. */
  stop: () => Promise<void>
  /** Starts one more node and joins it as a master without slots (`redis-cli --cluster add-node`); its port. */
  addMaster: () => Promise<number>
}

const alive = (n: ClusterNode) => n.process.exitCode === null && n.process.signalCode === null

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

async function redisCli(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { timeout: 30_000 })
  return stdout
}

function parseNodes(text: string): NodeInfo[] {
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

/**
 * Starts `masters` masters with `replicas` replicas each (cluster-node-timeout `nodeTimeoutMs`, no
 * persistence, noeviction). On a failure while starting, whatever started is stopped before it throws.
 */
export async function startLocalCluster(opts: { masters?: number; replicas?: number; nodeTimeoutMs?: number } = {}):
  Promise<LocalCluster> {
  const masters = opts.masters ?? 3
  const replicas = opts.replicas ?? 1
  const ports = await freeClusterPorts(masters * (1 + replicas))
  const nodes: ClusterNode[] = []
  const stop = async () => {
    await Promise.all(nodes.map(async (n) => {
      if (alive(n)) {
        n.process.kill('SIGCONT')
        n.process.kill('SIGKILL')
        await once(n.process, 'exit')
      }
      await rm(n.dir, { recursive: true, force: true })
    }))
  }
  const topology: LocalCluster['topology'] = async (viaPort) =>
    parseNodes(await redisCli(viaPort ?? nodes.find(alive)!.port, 'cluster', 'nodes'))
  const waitHealthy = async (timeoutMs = 30_000) => {
    const end = Date.now() + timeoutMs
    for (;;) {
      const live = nodes.filter(alive)
      const states = await Promise.all(live.map((n) => redisCli(n.port, 'cluster', 'info')
        .then((s) => /cluster_state:ok/.test(s), () => false)))
      // Replicas in sync with their masters, so a kill loses only what was written after this point.
      const links = await Promise.all(live.map((n) => redisCli(n.port, 'info', 'replication')
        .then((s) => !/role:slave/.test(s) || /master_link_status:up/.test(s), () => false)))
      if (states.every(Boolean) && links.every(Boolean)) return
      if (Date.now() > end) throw new Error('cluster did not become healthy')
      await sleep(100)
    }
  }
  const launch = (port: number, dir: string) => {
    const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir,
      '--cluster-enabled', 'yes', '--cluster-config-file', path.join(dir, 'nodes.conf'),
      '--cluster-node-timeout', String(opts.nodeTimeoutMs ?? 2000), '--save', '', '--appendonly', 'no',
      // A dead master's slots must not stop the others: without this every node answers CLUSTERDOWN from the
      // moment the master is marked failed until its replica is promoted (docs/scaling.md, failover).
      '--cluster-require-full-coverage', 'no',
      '--maxmemory-policy', 'noeviction', '--logfile', path.join(dir, 'redis.log')], { stdio: 'ignore' })
    proc.on('error', () => {}) // no redis-server: the ping below fails and says so
    return proc
  }
  const startNode = async (port: number): Promise<ClusterNode> => {
    const dir = await mkdtemp(path.join(tmpdir(), `fcfs-cluster-${port}-`))
    const node = { port, dir, process: launch(port, dir) }
    nodes.push(node)
    return node
  }
  const waitPing = async (n: ClusterNode) => {
    for (let i = 0; ; i++) {
      try { if ((await redisCli(n.port, 'ping')).trim() === 'PONG') return } catch { /* not up yet */ }
      if (i > 200 || !alive(n)) throw new Error(`redis-server on ${n.port} did not start (see ${n.dir}/redis.log)`)
      await sleep(50)
    }
  }
  try {
    for (const port of ports) await startNode(port)
    for (const n of nodes) await waitPing(n)
    await run('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`),
      '--cluster-replicas', String(replicas), '--cluster-yes'], { timeout: 60_000 })
    await waitHealthy(60_000)
  } catch (err) {
    await stop()
    throw err
  }
  return {
    nodes,
    seeds: ports.map((p) => `127.0.0.1:${p}`).join(','),
    topology,
    async ownerOf(slot, viaPort) {
      const owner = (await topology(viaPort)).find((n) => n.role === 'master' && !n.failed &&
        n.slots.some(([a, b]) => slot >= a && slot <= b))
      if (!owner) throw new Error(`no live master serves slot ${slot}`)
      return owner
    },
    async signal(port, sig) {
      const n = nodes.find((x) => x.port === port)!
      n.process.kill(sig)
      if (sig === 'SIGKILL') await once(n.process, 'exit')
    },
    async restart(port) {
      const n = nodes.find((x) => x.port === port)!
      if (alive(n)) throw new Error(`node ${port} is still running`)
      n.process = launch(port, n.dir)
      await waitPing(n)
    },
    waitHealthy,
    stop,
    async addMaster() {
      const [port] = await freeClusterPorts(1)
      const node = await startNode(port!)
      await waitPing(node)
      await run('redis-cli', ['--cluster', 'add-node', `127.0.0.1:${port}`, `127.0.0.1:${ports[0]}`],
        { timeout: 60_000 })
      await waitHealthy(60_000)
      return port!
    },
  }
}
