import { Redis, type RedisOptions } from 'ioredis'

export interface RedisClientOptions {
  /** Fail a command after this many reconnect attempts instead of queueing forever. */
  maxRetriesPerRequest?: number | null
  autoPipelining?: boolean
  connectionName?: string
}

export function createRedis(url: string, opts: RedisClientOptions = {}): Redis {
  const options: RedisOptions = {
    maxRetriesPerRequest: opts.maxRetriesPerRequest === undefined ? 2 : opts.maxRetriesPerRequest,
    enableAutoPipelining: opts.autoPipelining ?? true,
    connectionName: opts.connectionName,
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
    lazyConnect: false,
  }
  return new Redis(url, options)
}

/** An evicting policy can drop a campaign's counter, and a missing counter read as 0 oversells. */
export async function checkEvictionPolicy(redis: Redis): Promise<string | null> {
  try {
    const reply = (await redis.config('GET', 'maxmemory-policy')) as string[]
    const policy = reply[1] ?? ''
    return policy === 'noeviction' ? null : policy
  } catch {
    return null // CONFIG disabled (managed Redis): nothing to check against
  }
}
