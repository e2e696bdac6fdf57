/**
 * A real Redis Cluster for a test file: 3 masters + 3 replicas on free loopback ports (bench/cluster.ts, shared
 * with `npm run bench -- --cluster`), stopped at teardown. One cluster per test file keeps the suite's time down.
 */
import { Cluster, Redis } from 'ioredis'
import { startLocalCluster, type LocalCluster } from '../bench/cluster.js'
import { testEnv, type TestEnv } from './helper.js'

interface Tap { teardown(fn: () => unknown): void }

export interface TestCluster extends LocalCluster {
  /** A direct connection to one node (closed at teardown). */
  direct: (port: number) => Redis
  /** SIGKILL a node (no shutdown, no save): its unreplicated writes are gone. */
  kill: (port: number) => Promise<void>
  /**
   * Replication lag, widened: the replica frozen (SIGSTOP) and the master's link to it cut, so the master
   * keeps acknowledging writes the replica never gets. Returns when the link was cut (ms).
   */
  cutReplica: (master: number, replica: number) => Promise<number>
}

export async function startCluster(t: Tap,
  opts: { masters?: number; replicas?: number; nodeTimeoutMs?: number } = {}): Promise<TestCluster> {
  const cluster = await startLocalCluster(opts)
  const directs: Redis[] = []
  t.teardown(async () => {
    for (const c of directs) c.disconnect()
    await cluster.stop()
  })
  const direct = (port: number) => {
    const c = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 1, retryStrategy: () => null })
    c.on('error', () => {})
    directs.push(c)
    return c
  }
  return {
    ...cluster,
    direct,
    kill: (port) => cluster.signal(port, 'SIGKILL'),
    async cutReplica(master, replica) {
      await cluster.signal(replica, 'SIGSTOP')
      await direct(master).call('CLIENT', 'KILL', 'TYPE', 'replica')
      return Date.now()
    },
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
