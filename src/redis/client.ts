import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis'

/** A single Redis or a Redis Cluster: the same commands, scripts and key builders serve both. */
export type RedisClient = Redis | Cluster

/** Where Redis is: REDIS_CLUSTER_NODES set means a cluster (seeds), else the one server of REDIS_URL. */
export interface RedisTarget {
  REDIS_URL: string
  REDIS_CLUSTER_NODES?: string | undefined
}

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
   * On a cluster the timer starts at the first send and keeps running through ioredis' own retries
   * (failover, CLUSTERDOWN, TRYAGAIN), so it bounds those too.
   */
  commandTimeoutMs: number
  /** Fail a command after this many reconnect attempts instead of queueing forever. */
  maxRetriesPerRequest?: number | null
  /** A single Redis only (default on); a cluster client never auto-pipelines (see below). */
  autoPipelining?: boolean
  connectionName?: string
}

const retryStrategy = (times: number) => Math.min(50 * 2 ** Math.min(times, 6), 2000)

/** host:port seeds of REDIS_CLUSTER_NODES ([v6]:port accepted). */
function parseClusterNodes(list: string): { host: string; port: number }[] {
  return list.split(',').map((s) => s.trim()).filter(Boolean).map((s) => {
    const i = s.lastIndexOf(':')
    return { host: s.slice(0, i).replace(/^\[(.*)\]$/, '$1'), port: Number(s.slice(i + 1)) }
  })
}

/** The credentials and TLS of REDIS_URL, which a cluster's nodes share (ACL users are per node, set alike). */
function urlAuth(url: string): Pick<RedisOptions, 'username' | 'password' | 'tls'> {
  const u = new URL(url)
  return {
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(u.protocol === 'rediss:' ? { tls: {} } : {}),
  }
}

export function isCluster(redis: RedisClient): redis is Cluster {
  return redis instanceof Cluster
}

/**
 * The one factory for Redis connections of every role: timeouts and error logging apply to all of them.
 * REDIS_CLUSTER_NODES set: an ioredis Cluster over those seeds, with REDIS_URL's user, password and TLS.
 */
export function createRedis(target: { REDIS_URL: string; REDIS_CLUSTER_NODES?: undefined },
  opts: RedisClientOptions): Redis
export function createRedis(target: RedisTarget, opts: RedisClientOptions): RedisClient
export function createRedis(target: RedisTarget, opts: RedisClientOptions): RedisClient {
  const node: RedisOptions = {
    maxRetriesPerRequest: opts.maxRetriesPerRequest === undefined ? 2 : opts.maxRetriesPerRequest,
    connectionName: opts.connectionName,
    // CLIENT SETINFO (Redis >= 7.2) is one more command the ACL would have to allow, for a label only.
    disableClientInfo: true,
    commandTimeout: opts.commandTimeoutMs,
  }
  let client: RedisClient
  if (!target.REDIS_CLUSTER_NODES) {
    client = new Redis(target.REDIS_URL,
      { ...node, enableAutoPipelining: opts.autoPipelining ?? true, retryStrategy, lazyConnect: false })
  } else {
    const options: ClusterOptions = {
      redisOptions: { ...node, ...urlAuth(target.REDIS_URL) },
      // No auto-pipelining on a cluster (issue 19, resharding): ioredis groups a tick's commands by the node
      // their slot was on when queued and refuses the whole group once a slot of it has moved ("All keys in
      // the pipeline should belong to the same slots allocation group": a 500 for claims on slots that never
      // moved), and a pipeline of writes whose commands get ASK/TRYAGAIN while others succeed is not retried
      // (the raw error reaches the caller). Sent one by one, each command follows its own MOVED/ASK and is
      // retried on TRYAGAIN until its bound. Commands still share each node's connection, written back to back.
      enableAutoPipelining: false,
      clusterRetryStrategy: retryStrategy,
      // A master killed: commands to it are retried after a slots refresh until its replica is promoted
      // (cluster-node-timeout plus the election) or the command timeout ends them with a 503 (errors.ts).
      retryDelayOnFailover: 200,
      retryDelayOnClusterDown: 200,
      retryDelayOnTryAgain: 100,
      // A migrating slot answers TRYAGAIN to a script whose keys are not all on one node (claim.lua declares
      // keys that do not exist yet, so every claim on the slot while it is MIGRATING); ioredis retries it on a
      // random master (a MOVED back, and an ASK once its keys have moved: up to three redirections per retry).
      // Enough for the whole command bound, so the bound ends such a claim (503), not "Too many Cluster
      // redirections" before the move is done.
      maxRedirections: 16 + 3 * Math.ceil(opts.commandTimeoutMs / 100),
      slotsRefreshTimeout: Math.max(1000, opts.commandTimeoutMs),
      // Reads go to masters too: a replica lags, and a claim's read-then-write must see its own writes.
      scaleReads: 'master',
    }
    client = new Cluster(parseClusterNodes(target.REDIS_CLUSTER_NODES), options)
  }
  logConnectionErrors(client, opts.log, opts.connectionName ?? 'redis')
  return client
}

/**
 * A dedicated connection to one node (host:port of a cluster's slots table, or REDIS_URL's server), with
 * REDIS_URL's credentials. In-flight commands are never re-sent after a reconnect: a caller that counts on
 * "the same connection" (WAIT) must see the break, not a silent resend on a new socket.
 */
export function createNodeConnection(target: RedisTarget, node: { host: string; port: number } | null,
  opts: RedisClientOptions): Redis {
  const options: RedisOptions = { maxRetriesPerRequest: 1, connectionName: opts.connectionName,
    disableClientInfo: true, commandTimeout: opts.commandTimeoutMs, retryStrategy,
    autoResendUnfulfilledCommands: false, enableAutoPipelining: false }
  const client = node ? new Redis({ ...options, ...urlAuth(target.REDIS_URL), host: node.host, port: node.port })
    : new Redis(target.REDIS_URL, options)
  logConnectionErrors(client, opts.log, opts.connectionName ?? 'redis')
  return client
}

/** Every master: a single Redis is its own; a cluster's come from its slots table (refreshed on changes). */
export function masters(redis: RedisClient): Redis[] {
  return isCluster(redis) ? redis.nodes('master') : [redis]
}

/** Resolves once a cluster client has its slots table (a single Redis needs none), or after timeoutMs. */
export async function clusterReady(redis: RedisClient, timeoutMs: number): Promise<void> {
  if (!isCluster(redis) || redis.status === 'ready') return
  await new Promise<void>((resolve) => {
    const timer = setTimeout(done, timeoutMs)
    function done() { clearTimeout(timer); redis.off('ready', done); resolve() }
    redis.once('ready', done)
  })
}

/**
 * One JSON line for the first error after a healthy spell, then at most one every 10 s with a count, so a
 * Redis outage cannot flood the log with a line per reconnect attempt.
 */
function logConnectionErrors(client: RedisClient, log: RedisLog, connection: string): void {
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
