import type { Redis } from 'ioredis'
import { clusterReady, masters, type RedisClient } from './client.js'

export interface EvictionStatus {
  /** True only for noeviction everywhere, or an unknown policy explicitly acknowledged. */
  ok: boolean
  /** The policy each node reported ('unknown' where CONFIG GET was refused). */
  policies: string[]
  message: string
}

export class EvictionPolicyError extends Error {}

const ACK_HINT = 'make sure Redis runs with maxmemory-policy noeviction, then set REDIS_EVICTION_POLICY_ACK=noeviction'

/** Every master of a cluster (once its slots table is known: before that it lists none), or the one server. */
async function nodesOf(client: RedisClient): Promise<Redis[]> {
  await clusterReady(client, 10_000)
  return masters(client)
}

/**
 * An evicting policy can drop a campaign's counter, users or stream under memory pressure: a missing
 * counter reads as 0 and the same sequences are handed out again, and evicted claims are lost. Only
 * noeviction is safe. Where CONFIG is refused (ACL user, managed Redis) the policy is unknown and only
 * an explicit acknowledgement (REDIS_EVICTION_POLICY_ACK=noeviction) lets a role run.
 * Connection errors are thrown: reachability is another check's business.
 */
export async function checkEvictionPolicy(client: RedisClient, ack: string | undefined): Promise<EvictionStatus> {
  const policies = await Promise.all((await nodesOf(client)).map(async (node) => {
    try {
      const reply = (await node.config('GET', 'maxmemory-policy')) as string[]
      return reply[1] ?? 'unknown'
    } catch (err) {
      const msg = (err as Error).message ?? ''
      // NOPERM (ACL), a renamed/disabled CONFIG, or a managed Redis refusing it: the policy is unknown.
      if (/^(NOPERM|ERR unknown command|ERR unknown subcommand|ERR.*CONFIG)/i.test(msg)) return 'unknown'
      throw err
    }
  }))
  const evicting = policies.filter((p) => p !== 'noeviction' && p !== 'unknown')
  if (evicting.length > 0) {
    return {
      ok: false, policies,
      message: `Redis maxmemory-policy is "${evicting[0]}": under memory pressure Redis would evict campaign ` +
        'counters, users and streams (answered claims lost, sequences handed out twice); ' +
        'set maxmemory-policy noeviction',
    }
  }
  if (policies.includes('unknown')) {
    if (ack === 'noeviction') return { ok: true, policies,
      message: 'policy unknown (CONFIG GET refused); noeviction acknowledged by REDIS_EVICTION_POLICY_ACK' }
    return { ok: false, policies, message: `Redis maxmemory-policy unknown: CONFIG GET was refused; ${ACK_HINT}` }
  }
  return { ok: true, policies, message: 'noeviction' }
}

/** Start-up gate of every role: throws an EvictionPolicyError with the reason unless the policy is safe. */
export async function assertNoEviction(client: RedisClient, ack: string | undefined): Promise<EvictionStatus> {
  const status = await checkEvictionPolicy(client, ack)
  if (!status.ok) throw new EvictionPolicyError(`refusing to start: ${status.message}`)
  return status
}

/** Keys Redis has evicted since its start (or CONFIG RESETSTAT), summed over masters: evidence of lost state. */
export async function evictedKeys(client: RedisClient): Promise<number> {
  let total = 0
  for (const node of await nodesOf(client)) {
    const info = await node.info('stats')
    total += Number(/evicted_keys:(\d+)/.exec(info)?.[1] ?? 0)
  }
  return total
}
