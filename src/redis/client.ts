import { Redis, type Cluster, type RedisOptions } from 'ioredis'

/** The part of a pino/fastify logger the clients log through (never ioredis's raw stderr lines). */
interface RedisLog {
  warn(obj: object, msg: string): void
  error(obj: object, msg: string): void
}

export interface RedisClientOptions {
  /** Logs connection errors (throttled); without a listener ioredis prints "[ioredis] Unhandled error event". */
  log: RedisLog
  /**
   * A command (queued while reconnecting or sent) rejects after this long, so a request answers 503 within
   * about this bound instead of waiting for the reconnect. Blocking readers pass their block time plus this.
   */
  commandTimeoutMs: number
  /** Fail a command after this many reconnect attempts instead of queueing forever. */
  maxRetriesPerRequest?: number | null
  autoPipelining?: boolean
  connectionName?: string
}

/** The one factory for Redis connections of every role: timeouts and error logging apply to all of them. */
export function createRedis(url: string, opts: RedisClientOptions): Redis {
  const options: RedisOptions = {
    maxRetriesPerRequest: opts.maxRetriesPerRequest === undefined ? 2 : opts.maxRetriesPerRequest,
    enableAutoPipelining: opts.autoPipelining ?? true,
    connectionName: opts.connectionName,
    // CLIENT SETINFO (Redis >= 7.2) is one more command the ACL would have to allow, for a label only.
    disableClientInfo: true,
    commandTimeout: opts.commandTimeoutMs,
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
    lazyConnect: false,
  }
  const redis = new Redis(url, options)
  logConnectionErrors(redis, opts.log, opts.connectionName ?? 'redis')
  return redis
}

/**
 * One JSON line for the first error after a healthy spell, then at most one every 10 s with a count, so a
 * Redis outage cannot flood the log with a line per reconnect attempt.
 */
function logConnectionErrors(client: Redis | Cluster, log: RedisLog, connection: string): void {
  let last = 0
  let suppressed = 0
  client.on('error', (err: Error & { code?: string }) => {
    const now = Date.now()
    if (now - last < 10_000) { suppressed++; return }
    last = now
    log.warn({ connection, err: { message: err.message, code: err.code }, suppressed }, 'redis connection error')
    suppressed = 0
  })
  client.on('ready', () => { last = 0 })
}

const REPLY_UNAVAILABLE = /^(OOM|LOADING|READONLY|BUSY|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|NOREPLICAS|MISCONF)\b/
const SCRIPT_UNAVAILABLE = /^ERR Error running script.*[\s:-](OOM|LOADING|READONLY|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|NOREPLICAS|MISCONF)\b/s

/**
 * Redis answered, but cannot serve writes (or anything) right now: out of memory, loading its dataset,
 * a replica after a failover, a script running too long, no master. Retrying later can succeed.
 * Scripts relay the inner command's error, sometimes behind "ERR Error running script".
 */
export function isRedisUnavailableReply(message: string | undefined): boolean {
  if (!message) return false
  return REPLY_UNAVAILABLE.test(message) || SCRIPT_UNAVAILABLE.test(message)
}
