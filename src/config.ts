import { Type, type Static } from 'typebox'
import { Value } from 'typebox/value'

const Int = (def: number, min: number, description: string) =>
  Type.Integer({ default: def, minimum: min, description })

export const WORKER_METRICS_DEFAULT_PORT = 9464

export const ConfigSchema = Type.Object({
  NODE_ENV: Type.String({
    default: 'development',
    description: "`production` turns off pretty logs and refuses `npm run dev`'s secrets",
  }),
  PORT: Type.Integer({ default: 3000, minimum: 0, maximum: 65535, description: 'API port' }),
  HOST: Type.String({
    default: '127.0.0.1', minLength: 1,
    description: "bind address of the API and the worker's metrics (`0.0.0.0` in containers)",
  }),
  REDIS_URL: Type.String({ default: 'redis://127.0.0.1:6379', pattern: '^rediss?://', description: 'Redis' }),
  // Set = Redis Cluster: comma-separated host:port seeds; every role then uses ioredis' Cluster client
  // (REDIS_URL's user, password and rediss:// still apply to every node). Unset = the one Redis of REDIS_URL.
  REDIS_CLUSTER_NODES: Type.Optional(Type.String({
    pattern: '^[A-Za-z0-9_.:\\[\\], -]+$',
    description: 'Redis Cluster seeds `host:port,…`: every role uses the Cluster client ([scaling](docs/scaling.md))',
  })),
  DATABASE_URL: Type.String({
    default: 'postgres://postgres@127.0.0.1:5432/fcfs', pattern: '^postgres(ql)?://',
    description: 'PostgreSQL; `npm run migrate` creates the database if missing',
  }),
  // PostgreSQL bounds of the API and the worker (docs/operations.md, "behaviour on a bad day"): a connection
  // attempt fails after CONNECT; a statement is cancelled by the server after STATEMENT, and a connection on
  // which the server stays silent for STATEMENT + 0.5 s while a request is outstanding is destroyed. So a
  // request needing PostgreSQL answers (503 BACKEND_UNAVAILABLE when it is down) within about their sum.
  PG_CONNECT_TIMEOUT_MS: Type.Integer({
    default: 2000, minimum: 100, maximum: 60_000,
    description: 'API and worker: a PostgreSQL connection attempt fails after this ' +
      '([operations](docs/operations.md#postgresql-trouble-every-call-bounded-no-crash-no-stall))',
  }),
  PG_STATEMENT_TIMEOUT_MS: Type.Integer({
    default: 2000, minimum: 100, maximum: 600_000,
    description: 'API and worker: statement timeout, pool-acquire bound, a silent connection destroyed after ' +
      'it + 0.5 s: admin routes answer 503 within about 2.5 s during an outage',
  }),
  KEY_PREFIX: Type.String({
    default: 'fcfs', pattern: '^[A-Za-z0-9_.:-]{1,64}$',
    description: 'every Redis key starts with it',
  }),
  // Fixed once campaigns exist: a campaign's keys and stream live in partition (id mod STREAM_PARTITIONS).
  // 12 splits evenly over 1, 2, 3, 4, 6 or 12 cluster masters (each partition's slot is placed, see keys.ts).
  STREAM_PARTITIONS: Type.Integer({
    default: 12, minimum: 1, maximum: 1024,
    description: 'claim streams; **fixed once campaigns exist** (a campaign lives in partition `id mod N`)',
  }),
  // A Redis command (also one queued while reconnecting) fails after this long: requests answer 503
  // BACKEND_UNAVAILABLE within about this bound instead of waiting out the reconnect.
  REDIS_COMMAND_TIMEOUT_MS: Type.Integer({
    default: 1000, minimum: 50, maximum: 60_000,
    description: 'a Redis command fails after this: 503 `BACKEND_UNAVAILABLE` + `Retry-After` ' +
      '([operations](docs/operations.md))',
  }),
  // Where CONFIG GET is refused (ACL user, managed Redis) the eviction policy cannot be checked: every role
  // refuses to start unless this acknowledges that the server really runs maxmemory-policy noeviction.
  REDIS_EVICTION_POLICY_ACK: Type.Optional(Type.Literal('noeviction', {
    description: '`noeviction`: vouches for a policy `CONFIG GET` cannot read ([security](docs/security.md))',
  })),
  // The API re-checks the eviction policy this often (and on every /readyz): a policy changed at run time
  // takes the instance out of readiness and refuses claims until noeviction is back.
  REDIS_POLICY_CHECK_INTERVAL_MS: Int(1000, 250, 'how often the API re-checks the eviction policy; an evicting ' +
    'one refuses claims (503) until `noeviction` is back'),
  // replica: a claim (cancel, confirm, a replayed answer) is answered only once its master reports it on
  // CLAIM_MIN_REPLICAS replicas (group-committed WAIT, src/durability/), within CLAIM_DURABILITY_TIMEOUT_MS;
  // otherwise 503 NOT_DURABLE (outcome unknown). The worker persists only entries already on the replicas.
  CLAIM_DURABILITY: Type.Union([Type.Literal('none'), Type.Literal('replica')], {
    default: 'none',
    description: '`replica`: a claim, cancel or confirm is answered only once its master has it on ' +
      '`CLAIM_MIN_REPLICAS` replicas (group-committed `WAIT`), else 503 `NOT_DURABLE` ' +
      '([scaling](docs/scaling.md#failover-with-claim_durabilityreplica-nothing-acknowledged-is-lost))',
  }),
  CLAIM_MIN_REPLICAS: Type.Integer({
    default: 1, minimum: 1, maximum: 16,
    description: 'replicas each write must reach; a master with fewer is refused claims (503 before the script)',
  }),
  CLAIM_DURABILITY_TIMEOUT_MS: Type.Integer({ default: 500, minimum: 10, maximum: 60_000,
    description: 'bound on that confirmation' }),
  // Hands-free recovery (src/recovery/): each API instance looks for campaigns fenced by a Redis restart or
  // failover this often (and at once when a claim meets one), repairs them from PostgreSQL and lifts the
  // fence. 0 turns it off: claims are then never fenced, and a lost live state answers CAMPAIGN_UNAVAILABLE.
  RECOVERY_INTERVAL_MS: Int(1000, 0, 'how often each API instance looks for campaigns fenced by a Redis restart ' +
    'or failover (503 `RECOVERING`) and repairs them from PostgreSQL; `0` turns recovery and the fence off'),
  ADMIN_TOKEN: Type.Optional(Type.String({
    minLength: 16,
    description: 'bearer token of `/admin/*` (16+ chars); unset: 503 `ADMIN_DISABLED`',
  })),
  JWT_SECRET: Type.Optional(Type.String({
    minLength: 16,
    description: 'HS256 secret of user tokens (16+ chars); required unless `TRUSTED_USER_HEADER`',
  })),
  JWT_ISSUER: Type.Optional(Type.String({ minLength: 1, description: 'tokens must carry this `iss`' })),
  JWT_AUDIENCE: Type.Optional(Type.String({ minLength: 1, description: 'tokens must carry this `aud`' })),
  // A token without exp would be valid forever: refused unless this is false.
  JWT_REQUIRE_EXP: Type.Boolean({ default: true, description: 'tokens without `exp` are refused' }),
  // Refuses tokens whose exp is further ahead than this (a leaked long-lived token); 0 = no limit.
  JWT_MAX_LIFETIME_S: Int(86_400, 0, 'tokens whose `exp` is further ahead are refused; `0` no limit'),
  TRUSTED_USER_HEADER: Type.Optional(Type.String({
    pattern: '^[A-Za-z0-9-]{1,64}$',
    description: 'e.g. `x-user-id`: the user id from this header (behind an authenticating gateway)',
  })),
  // Comma-separated browser origins (https://shop.example) allowed to call the claim route and the public reads
  // cross-origin; unset sends no CORS headers at all (server-to-server callers need none).
  CORS_ORIGINS: Type.Optional(Type.String({
    minLength: 1,
    description: 'comma-separated browser origins allowed on the claim route and the user reads ' +
      '([api](docs/api.md#http-conventions))',
  })),
  // false | true | hop count | comma-separated addresses/CIDRs of the proxies to trust.
  TRUST_PROXY: Type.String({
    default: 'false',
    description: '`true`, a hop count, or proxy addresses/CIDRs whose `X-Forwarded-For` counts',
  }),
  // 0 disables a limiter. Per user: generous for double-clicks and retries, tight for scripts.
  RATE_LIMIT_USER_MAX: Int(60, 0, 'claim requests per user per campaign per window (in Redis); `0` off'),
  RATE_LIMIT_USER_WINDOW_MS: Int(10_000, 1, 'its window'),
  // Per IP: loose, because thousands of real users can share one address behind NAT.
  RATE_LIMIT_IP_MAX: Int(20_000, 0, 'looser per-IP limit, per instance; `0` off'),
  RATE_LIMIT_IP_WINDOW_MS: Int(10_000, 1, 'its window'),
  // skipOnError of the per-IP limiter; the per-user counter runs inside claim.lua, so it fails with the claim.
  RATE_LIMIT_FAIL_OPEN: Type.Boolean({
    default: true,
    description: "the per-IP limiter's store failing lets the request through (the per-user counter runs in " +
      '`claim.lua`: it fails with the claim)',
  }),
  IDEMPOTENCY_TTL_S: Int(86400, 1, "how long a claim's `Idempotency-Key` answer is replayed"),
  // How long an instance answers 410 locally after Redis said SOLD_OUT (stock additions clear it at once
  // through pub/sub; the expiry only bounds changes nobody announced). 0 turns the local answer off.
  SOLD_OUT_CACHE_MS: Int(1000, 0, 'an instance answers 410 locally this long after Redis said sold out; ' +
    '`0` off ([api](docs/api.md))'),
  BODY_LIMIT: Int(4096, 256, 'max request body bytes (413 above)'),
  // Slow clients: complete headers within HEADERS, the whole request within REQUEST, an idle keep-alive
  // connection closes after KEEPALIVE (above a load balancer's 60 s idle timeout, so it never reuses a
  // closing socket), and a socket silent for IDLE in the middle of anything is destroyed.
  HTTP_HEADERS_TIMEOUT_MS: Int(15_000, 100,
    'slow clients: headers complete within this ([security](docs/security.md#slow-clients))'),
  HTTP_REQUEST_TIMEOUT_MS: Int(30_000, 100, 'whole request within this'),
  HTTP_KEEPALIVE_TIMEOUT_MS: Int(65_000, 100, 'idle keep-alive connection closed after this'),
  HTTP_IDLE_TIMEOUT_MS: Int(70_000, 100, 'silent socket closed after this'),
  // Human-readable log lines (pino-pretty) instead of JSON: auto = when stdout is a terminal and NODE_ENV is not
  // production; npm run dev sets true for its children.
  LOG_PRETTY: Type.Union([Type.Literal('auto'), Type.Literal('true'), Type.Literal('false')], {
    default: 'auto',
    description: '`true`: human-readable lines (pino-pretty), `false`: JSON, `auto`: pretty on a terminal outside ' +
      'production; `npm run dev` sets `true`',
  }),
  LOG_LEVEL: Type.Union([Type.Literal('fatal'), Type.Literal('error'), Type.Literal('warn'), Type.Literal('info'),
    Type.Literal('debug'), Type.Literal('trace'), Type.Literal('silent')], {
    default: 'info', description: 'pino level',
  }),
  // Worker
  WORKER_NAME: Type.Optional(Type.String({
    pattern: '^[A-Za-z0-9_.:-]{1,128}$',
    description: 'consumer name (default `<hostname>-<pid>`); unique per running worker',
  })),
  // Entries read per stream per XREADGROUP; bounded so one batch stays a sane transaction and log line.
  WORKER_COUNT: Type.Integer({
    default: 2000, minimum: 1, maximum: 10_000,
    description: '`XREADGROUP COUNT` per stream',
  }),
  WORKER_BLOCK_MS: Int(1000, 1, '`XREADGROUP BLOCK`'),
  RECLAIM_IDLE_MS: Int(30000, 1, 'entries idle longer are taken over from other consumers'),
  RECLAIM_INTERVAL_MS: Int(5000, 1, 'how often to reclaim'),
  MAX_DELIVERIES: Int(5, 1, 'failed deliveries before an entry becomes a dead letter'),
  // Batches being written at once, each on its own Postgres connection (reading goes on meanwhile).
  WORKER_INFLIGHT: Type.Integer({
    default: 4, minimum: 1, maximum: 32,
    description: 'batches written at once (1..32), each on its own connection',
  }),
  // -1 disables the worker's /healthz, /readyz and /metrics listener; 0 picks a free port. The default, when
  // taken (a second worker on one host), falls back to a free port and logs which; another taken port is an error.
  WORKER_METRICS_PORT: Type.Integer({
    default: WORKER_METRICS_DEFAULT_PORT, minimum: -1, maximum: 65535,
    description: "worker's `/healthz`, `/readyz`, `/metrics`; `0` any free port, `-1` off; the default, when " +
      'taken (a second worker on the host), falls back to a free port named in the log, any other taken port stops ' +
      'the worker with a message',
  }),
  WORKER_GROUP: Type.String({
    default: 'persisters', pattern: '^[A-Za-z0-9_.:-]{1,64}$',
    description: 'consumer group',
  }),
  // How often the worker expires due holds (campaigns with holdSeconds): an expired hold's unit goes back
  // within about this long of expiresAt (claims and confirms also expire due holds themselves).
  HOLD_SWEEP_MS: Type.Integer({
    default: 250, minimum: 10, maximum: 60_000,
    description: 'how often the worker expires due holds ([lifecycle](docs/lifecycle.md))',
  }),
  // When > 0, the worker archives campaigns this many seconds after closesAt (off by default: archiving
  // removes the live state, and an operator may want to look at it first).
  ARCHIVE_AFTER_S: Int(0, 0, 'worker archives campaigns this long after `closesAt`; `0` off'),
  // On SIGTERM: how long to keep retrying the batch in hand (Postgres down) before leaving it pending.
  WORKER_SHUTDOWN_TIMEOUT_MS: Int(10000, 0, 'on SIGTERM, how long to retry the batch in hand'),
  // Operations (API). /metrics on the public port needs this bearer token; without it the route answers 503.
  METRICS_TOKEN: Type.Optional(Type.String({
    minLength: 16,
    description: 'bearer token of `/metrics` on the API port; unset: 503 `METRICS_DISABLED` there',
  })),
  // When set, a second listener serves /metrics, /healthz and /readyz (keep this port off the public network).
  METRICS_PORT: Type.Optional(Type.Integer({
    minimum: 0, maximum: 65535,
    description: 'a second, private listener for `/metrics`, `/healthz`, `/readyz`',
  })),
  METRICS_HOST: Type.Optional(Type.String({ minLength: 1, description: 'its address (default `HOST`)' })),
  // Each readiness check (Redis, PostgreSQL, scripts) gives up after this long, so /readyz answers within a second.
  READY_TIMEOUT_MS: Type.Integer({
    default: 500, minimum: 1, maximum: 5000,
    description: 'bound on each readiness check',
  }),
  // The live feed (GET /admin/campaigns/:id/live) reads each watched campaign this often, once per instance
  // whatever the number of viewers; the page needs at least one update a second during a burst.
  LIVE_INTERVAL_MS: Type.Integer({
    default: 1000, minimum: 100, maximum: 60_000,
    description: "period of the `/admin/live` feed's snapshots ([operations](docs/operations.md))",
  }),
  // Waiting rooms (issue 21): each API instance advances every queued campaign this often (advance.lua is
  // atomic and budgets by the time since the last advance, so instances never double-admit). 0: this
  // instance leaves the advancing to the others.
  QUEUE_TICK_MS: Type.Integer({
    default: 100, minimum: 0, maximum: 10_000,
    description: 'how often an API instance advances the waiting rooms; `0`: leave it to the other instances ' +
      '([queue](docs/queue.md))',
  }),
  // After SIGTERM: time for in-flight requests to finish before the process exits hard.
  SHUTDOWN_GRACE_MS: Int(10_000, 1, 'after SIGTERM, time for in-flight requests before a hard exit'),
})

export type Config = Static<typeof ConfigSchema>

/** Whether log lines are pretty-printed (LOG_PRETTY; auto: a terminal, outside production). */
export const prettyLogs = (c: Pick<Config, 'LOG_PRETTY' | 'NODE_ENV'>, tty = process.stdout.isTTY === true): boolean =>
  c.LOG_PRETTY === 'true' || (c.LOG_PRETTY === 'auto' && tty && c.NODE_ENV !== 'production')

/** The secrets `npm run dev` uses when none are set; printed by it, and refused when NODE_ENV=production. */
export const DEV_SECRETS = {
  ADMIN_TOKEN: 'dev-admin-token-not-for-production',
  JWT_SECRET: 'dev-jwt-secret-not-for-production',
} as const

export class ConfigError extends Error {}

/** Parses the environment once; throws a ConfigError naming every bad variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env,
  role: 'api' | 'worker' | 'script' = 'api'): Config {
  const props = ConfigSchema.properties as Record<string, unknown>
  const raw: Record<string, unknown> = {}
  for (const name of Object.keys(props)) {
    const v = env[name]
    if (v !== undefined && v !== '') raw[name] = v
  }
  const withDefaults = Value.Default(ConfigSchema, raw)
  const converted = Value.Convert(ConfigSchema, withDefaults) as Record<string, unknown>
  const errors = [...Value.Errors(ConfigSchema, converted)]
  if (errors.length > 0) {
    const lines = errors.map((e) => {
      const name = e.instancePath.replace(/^\//, '') || String((e.params as { requiredProperties?: string[] }).requiredProperties ?? '')
      return `${name}: ${e.message} (got ${JSON.stringify(env[name] ?? null)})`
    })
    throw new ConfigError(`invalid configuration:\n  ${lines.join('\n  ')}`)
  }
  const config = converted as Config
  if (config.NODE_ENV === 'production') {
    const devDefaults = (Object.keys(DEV_SECRETS) as (keyof typeof DEV_SECRETS)[])
      .filter((k) => config[k] === DEV_SECRETS[k])
    if (devDefaults.length > 0) {
      const lines = devDefaults.map((k) => `${k}: the npm run dev default is refused when NODE_ENV=production`)
      throw new ConfigError(`invalid configuration:\n  ${lines.join('\n  ')}`)
    }
  }
  if (role === 'api' && !config.JWT_SECRET && !config.TRUSTED_USER_HEADER) {
    throw new ConfigError('invalid configuration:\n  JWT_SECRET: required unless TRUSTED_USER_HEADER is set ' +
      '(users must be identified somehow)')
  }
  parseTrustProxy(config.TRUST_PROXY)
  if (config.HTTP_HEADERS_TIMEOUT_MS > config.HTTP_REQUEST_TIMEOUT_MS) {
    throw new ConfigError('invalid configuration:\n  HTTP_HEADERS_TIMEOUT_MS: must not exceed ' +
      `HTTP_REQUEST_TIMEOUT_MS (${config.HTTP_REQUEST_TIMEOUT_MS})`)
  }
  parseCorsOrigins(config.CORS_ORIGINS)
  return config
}

/**
 * loadConfig for an entry point: a bad configuration prints its message (never a stack trace) on stderr
 * and exits with exitCode.
 */
export function loadConfigOrExit(role: 'api' | 'worker' | 'script', exitCode: number,
  env: Record<string, string | undefined> = process.env): Config {
  try {
    return loadConfig(env, role)
  } catch (err) {
    console.error(err instanceof ConfigError ? err.message : err)
    process.exit(exitCode)
  }
}

export function parseTrustProxy(v: string): boolean | number | string[] {
  if (v === 'false') return false
  if (v === 'true') return true
  if (/^\d+$/.test(v)) return Number(v)
  const list = v.split(',').map((s) => s.trim()).filter(Boolean)
  if (list.length === 0 || list.some((s) => !/^[0-9a-fA-F:.]+(\/\d{1,3})?$/.test(s))) {
    throw new ConfigError('invalid configuration:\n  TRUST_PROXY: expected false, true, a hop count or a ' +
      `comma-separated list of addresses/CIDRs (got ${JSON.stringify(v)})`)
  }
  return list
}

/** CORS_ORIGINS as a list of exact origins (scheme://host[:port]), or null when unset. */
export function parseCorsOrigins(v: string | undefined): string[] | null {
  if (v === undefined) return null
  const list = v.split(',').map((s) => s.trim()).filter(Boolean)
  const bad = list.filter((s) => !/^https?:\/\/[A-Za-z0-9.-]+(:\d{1,5})?$/.test(s))
  if (list.length === 0 || bad.length > 0) {
    throw new ConfigError(`invalid configuration:\n  CORS_ORIGINS: expected comma-separated origins like https://shop.example (no path, no wildcard) (got ${JSON.stringify(v)})`)
  }
  return list
}
