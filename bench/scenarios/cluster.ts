/**
 * `npm run bench -- --cluster`: the claim path on a local Redis Cluster (bench/cluster.ts, 3 masters + 3
 * replicas on loopback) beside the single Redis of the same run, and one slot's ceiling: the claim script
 * alone (no HTTP), as fast as one client with auto-pipelining can send it, on one campaign, against the
 * single Redis and against the cluster master that owns the campaign's slot.
 */
import { randomUUID } from 'node:crypto'
import { Cluster, Redis } from 'ioredis'
import { runClaim } from '../../src/claims/claim-script.js'
import { defineScripts } from '../../src/redis/scripts.js'
import type { RedisClient } from '../../src/redis/client.js'
import { startLocalCluster } from '../cluster.js'
import { waitForHttp } from '../processes.js'
import { cpuPerRequest, sampleCpu } from '../cpu-usage.js'
import { fmtInt } from '../progress.js'
import { createCampaign, HUGE_STOCK, job, measure, startServer, type Api, type Env, type HttpFigures } from '../env.js'

export const CLUSTER_MASTERS = 3

export interface SlotFigures {
  /** Claims per second through the claim script on one campaign (one slot), no HTTP. */
  claimsPerSec: number
  claims: number
  seconds: number
  /** CPU microseconds the redis-server serving the slot spent per claim (null: not on this machine). */
  redisCpuUsPerClaim: number | null
}

export interface ClusterFigures {
  masters: number
  replicasPerMaster: number
  /** The API on the cluster, one campaign, measured like the single-node issue path (CLAIM_DURABILITY=none). */
  issue: HttpFigures
  /** The same with CLAIM_DURABILITY=replica (its own API process, same cluster, right after): every 201 waits
   * for its master's group-committed WAIT. */
  issueReplica: HttpFigures
  slot: { single: SlotFigures; cluster: SlotFigures }
}

/** Claims in flight at once in the slot probe: enough to keep one Redis core busy through auto-pipelining. */
const SLOT_IN_FLIGHT = 256

async function slotProbe(env: Env, label: string, redis: RedisClient, campaignId: string,
  redisPid: number | null): Promise<SlotFigures> {
  defineScripts(redis)
  const runFor = async (seconds: number, tag: string) => {
    let claims = 0
    const end = Date.now() + seconds * 1000
    await Promise.all(Array.from({ length: SLOT_IN_FLIGHT }, async (_, lane) => {
      for (let i = 0; Date.now() < end; i++) {
        const r = await runClaim(redis, env.keys, { campaignId, userId: `${env.runId}-${tag}-${lane}-${i}`,
          claimId: randomUUID(), idempotencyTtlS: 60 })
        if (r.outcome.kind !== 'issued') throw new Error(`${label}: the claim script answered ${r.outcome.kind}`)
        claims++
      }
    }))
    return claims
  }
  if (env.opts.warmup > 0) await runFor(env.opts.warmup, `${label}-w`)
  const before = sampleCpu({ redis: redisPid })
  const started = Date.now()
  const claims = await runFor(env.opts.duration, label)
  const seconds = (Date.now() - started) / 1000
  const cpu = cpuPerRequest(before, sampleCpu({ redis: redisPid }), claims).redis ?? null
  const figures = { claimsPerSec: claims / seconds, claims, seconds, redisCpuUsPerClaim: cpu }
  env.progress.step(`  ${label}: ${fmtInt(figures.claimsPerSec)} claims/s${cpu === null ? '' : `, redis-server ${cpu.toFixed(1)} µs CPU per claim`}`)
  return figures
}

/** The issue path again through an API with CLAIM_DURABILITY=replica (CLAIM_MIN_REPLICAS 1) on the same cluster. */
async function measureReplica(env: Env, seeds: string, pidOf: (id: string) => Promise<number | null>):
  Promise<HttpFigures> {
  const { proc, url } = await startServer(env, 'api-cluster-replica', 'src/server', [],
    { REDIS_CLUSTER_NODES: seeds, CLAIM_DURABILITY: 'replica' })
  try {
    // Measured once every master reports its replica online (/readyz 200): a new cluster's replicas may still be
    // syncing, and claims meanwhile are refused 503 by design.
    await waitForHttp(`${url}/readyz`, proc, 30_000, (status) => status === 200)
    const id = await createCampaign(env, url, 'bench cluster issue path, replica', HUGE_STOCK)
    env.progress.step('issue path on the cluster with CLAIM_DURABILITY=replica: one campaign, every request wins')
    return await measure(env, 'issue (cluster, replica)',
      job(env, `${url}/v1/campaigns/${id}/claims`, 'cluster-issue-replica'), proc, await pidOf(id))
  } finally {
    await proc.stop()
  }
}

/** Runs after the single-node issue path, with the single-node API still up (`api`). */
export async function runCluster(env: Env, api: Api): Promise<ClusterFigures> {
  env.progress.step(`cluster: starting a local Redis Cluster (${CLUSTER_MASTERS} masters + ${CLUSTER_MASTERS} replicas)`)
  const cluster = await startLocalCluster({ masters: CLUSTER_MASTERS, replicas: 1 })
  env.progress.step(`  cluster nodes ${cluster.seeds}`)
  env.stopCluster = async () => {
    env.stopCluster = null
    await cluster.stop()
  }
  const { proc, url } = await startServer(env, 'api-cluster', 'src/server', [],
    { REDIS_CLUSTER_NODES: cluster.seeds })
  try {
    const id = await createCampaign(env, url, 'bench cluster issue path', HUGE_STOCK)
    const pidOf = async (campaign: string) => {
      const owner = await cluster.ownerOf(env.keys.slotOf(env.keys.partitionOf(campaign)))
      return cluster.nodes.find((n) => n.port === owner.port)?.process.pid ?? null
    }
    env.progress.step('issue path on the cluster: one campaign, every request wins')
    const issue = await measure(env, 'issue (cluster)', job(env, `${url}/v1/campaigns/${id}/claims`, 'cluster-issue'),
      proc, await pidOf(id))
    const issueReplica = await measureReplica(env, cluster.seeds, pidOf)

    env.progress.step(`one slot's ceiling: the claim script alone on one campaign, ${SLOT_IN_FLIGHT} in flight, auto-pipelined`)
    const single = new Redis(env.config.REDIS_URL, { enableAutoPipelining: true })
    const seeds = cluster.seeds.split(',').map((s) => ({ host: '127.0.0.1', port: Number(s.split(':')[1]) }))
    const clustered = new Cluster(seeds, { enableAutoPipelining: true, scaleReads: 'master' })
    try {
      const singleId = await createCampaign(env, api.url, 'bench slot single', HUGE_STOCK)
      const clusterId = await createCampaign(env, url, 'bench slot cluster', HUGE_STOCK)
      return {
        masters: CLUSTER_MASTERS, replicasPerMaster: 1, issue, issueReplica,
        slot: {
          single: await slotProbe(env, 'slot (single node)', single, singleId, env.redisPid),
          cluster: await slotProbe(env, 'slot (cluster)', clustered, clusterId, await pidOf(clusterId)),
        },
      }
    } finally {
      single.disconnect()
      clustered.disconnect()
    }
  } finally {
    await proc.stop()
    await env.stopCluster?.()
  }
}
