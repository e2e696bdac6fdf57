import { Type, type Static } from 'typebox'
import { Value } from 'typebox/value'

const Int = (def: number, min = 0) => Type.Integer({ default: def, minimum: min })

export const WORKER_METRICS_DEFAULT_PORT = 9464

export const ConfigSchema = Type.Object({
  NODE_ENV: Type.String({ default: 'development' }),
  PORT: Type.Integer({ default: 3000, minimum: 0, maximum: 65535 }),
  HOST: Type.String({ default: '127.0.0.1', minLength: 1 }),
  REDIS_URL: Type.String({ default: 'redis://127.0.0.1:6379', pattern: '^rediss?://' }),
  // Set = Redis Cluster: comma-separated host:port seeds; every role then uses ioredis' Cluster client
  // (REDIS_URL's user, password and rediss:// still apply to every node). Unset = the one Redis of REDIS_URL.
  REDIS_CLUSTER_NODES: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_.:\\[\\], -]+$' })),
  DATABASE_URL: Type.String({ default: 'postgres://postgres@127.0.0.1:5432/fcfs', pattern: '^postgres(ql)?://' }),
  // PostgreSQL bounds of the API and the worker (docs/operations.md, "behaviour on a bad day"): a connection
  // attempt fails after CONNECT; a statement is cancelled by the server after STATEMENT, and a connection on
  // which the server stays silent for STATEMENT + 0.5 s while a request is outstanding is destroyed. So a
  // request needing PostgreSQL answers (503 BACKEND_UNAVAILABLE when it is down) within about their sum.
  PG_CONNECT_TIMEOUT_MS: Type.Integer({ default: 2000, minimum: 100, maximum: 60_000 }),
  PG_STATEMENT_TIMEOUT_MS: Type.Integer({ default: 2000, minimum: 100, maximum: 600_000 }),
  KEY_PREFIX: Type.String({ default: 'fcfs', pattern: '^[A-Za-z0-9_.:-]{1,64}$' }),
  // Fixed once campaigns exist: a campaign's keys and stream live in partition (id mod STREAM_PARTITIONS).
  // 12 splits evenly over 1, 2, 3, 4, 6 or 12 cluster masters (each partition's slot is placed, see keys.ts).
  STREAM_PARTITIONS: Type.Integer({ default: 12, minimum: 1, maximum: 1024 }),
  // A Redis command (also one queued while reconnecting) fails after this long: requests answer 503
  // BACKEND_UNAVAILABLE within about this bound instead of waiting out the reconnect.
  REDIS_COMMAND_TIMEOUT_MS: Type.Integer({ default: 1000, minimum: 50, maximum: 60_000 }),
  // Where CONFIG GET is refused (ACL user, managed Redis) the eviction policy cannot be checked: every role
  // refuses to start unless this acknowledges that the server really runs maxmemory-policy noeviction.
  REDIS_EVICTION_POLICY_ACK: Type.Optional(Type.Literal('noeviction')),
  // The API re-checks the eviction policy this often (and on every /readyz): a policy changed at run time
  // takes the instance out of readiness and refuses claims until noeviction is back.
  REDIS_POLICY_CHECK_INTERVAL_MS: Int(1000, 250),
  // Hands-free recovery (src/recovery/): each API instance looks for campaigns fenced by a Redis restart or
  // failover this often (and at once when a claim meets one), repairs them from PostgreSQL and lifts the
  // fence. 0 turns it off: claims are then never fenced, and a lost live state answers CAMPAIGN_UNAVAILABLE.
  RECOVERY_INTERVAL_MS: Int(1000),
  ADMIN_TOKEN: Type.Optional(Type.String({ minLength: 16 })),
  JWT_SECRET: Type.Optional(Type.String({ minLength: 16 })),
  JWT_ISSUER: Type.Optional(Type.String({ minLength: 1 })),
  JWT_AUDIENCE: Type.Optional(Type.String({ minLength: 1 })),
  // A token without exp would be valid forever: refused unless this is false.
  JWT_REQUIRE_EXP: Type.Boolean({ default: true }),
  // Refuses tokens whose exp is further ahead than this (a leaked long-lived token); 0 = no limit.
  JWT_MAX_LIFETIME_S: Int(86_400),
  TRUSTED_USER_HEADER: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9-]{1,64}$' })),
  // Comma-separated browser origins (https://shop.example) allowed to call the claim route and the public reads
  // cross-origin; unset sends no CORS headers at all (server-to-server callers need none).
  CORS_ORIGINS: Type.Optional(Type.String({ minLength: 1 })),
  // false | true | hop count | comma-separated addresses/CIDRs of the proxies to trust.
  TRUST_PROXY: Type.String({ default: 'false' }),
  // 0 disables a limiter. Per user: generous for double-clicks and retries, tight for scripts.
  RATE_LIMIT_USER_MAX: Int(60),
  RATE_LIMIT_USER_WINDOW_MS: Int(10_000, 1),
  // Per IP: loose, because thousands of real users can share one address behind NAT.
  RATE_LIMIT_IP_MAX: Int(20_000),
  RATE_LIMIT_IP_WINDOW_MS: Int(10_000, 1),
  // skipOnError of the per-IP limiter; the per-user counter runs inside claim.lua, so it fails with the claim.
  RATE_LIMIT_FAIL_OPEN: Type.Boolean({ default: true }),
  IDEMPOTENCY_TTL_S: Int(86400, 1),
  // How long an instance answers 410 locally after Redis said SOLD_OUT (stock additions clear it at once
  // through pub/sub; the expiry only bounds changes nobody announced). 0 turns the local answer off.
  SOLD_OUT_CACHE_MS: Int(1000),
  BODY_LIMIT: Int(4096, 256),
  // Slow clients: complete headers within HEADERS, the whole request within REQUEST, an idle keep-alive
  // connection closes after KEEPALIVE (above a load balancer's 60 s idle timeout, so it never reuses a
  // closing socket), and a socket silent for IDLE in the middle of anything is destroyed.
  HTTP_HEADERS_TIMEOUT_MS: Int(15_000, 100),
  HTTP_REQUEST_TIMEOUT_MS: Int(30_000, 100),
  HTTP_KEEPALIVE_TIMEOUT_MS: Int(65_000, 100),
  HTTP_IDLE_TIMEOUT_MS: Int(70_000, 100),
  // Human-readable log lines (pino-pretty) instead of JSON: auto = when stdout is a terminal and NODE_ENV is not
  // production; npm run dev sets true for its children.
  LOG_PRETTY: Type.Union([Type.Literal('auto'), Type.Literal('true'), Type.Literal('false')], { default: 'auto' }),
  LOG_LEVEL: Type.Union([Type.Literal('fatal'), Type.Literal('error'), Type.Literal('warn'), Type.Literal('info'),
    Type.Literal('debug'), Type.Literal('trace'), Type.Literal('silent')], { default: 'info' }),
  // Worker
  WORKER_NAME: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_.:-]{1,128}$' })),
  // Entries read per stream per XREADGROUP; bounded so one batch stays a sane transaction and log line.
  WORKER_COUNT: Type.Integer({ default: 2000, minimum: 1, maximum: 10_000 }),
  WORKER_BLOCK_MS: Int(1000, 1),
  RECLAIM_IDLE_MS: Int(30000, 1),
  RECLAIM_INTERVAL_MS: Int(5000, 1),
  MAX_DELIVERIES: Int(5, 1),
  // Batches being written at once, each on its own Postgres connection (reading goes on meanwhile).
  WORKER_INFLIGHT: Type.Integer({ default: 4, minimum: 1, maximum: 32 }),
  // -1 disables the worker's /healthz, /readyz and /metrics listener; 0 picks a free port. The default, when
  // taken (a second worker on one host), falls back to a free port and logs which; another taken port is an error.
  WORKER_METRICS_PORT: Type.Integer({ default: WORKER_METRICS_DEFAULT_PORT, minimum: -1, maximum: 65535 }),
  WORKER_GROUP: Type.String({ default: 'persisters', pattern: '^[A-Za-z0-9_.:-]{1,64}$' }),
  // How often the worker expires due holds (campaigns with holdSeconds): an expired hold's unit goes back
  // within about this long of expiresAt (claims and confirms also expire due holds themselves).
  HOLD_SWEEP_MS: Type.Integer({ default: 250, minimum: 10, maximum: 60_000 }),
  // When > 0, the worker archives campaigns this many seconds after closesAt (off by default: archiving
  // removes the live state, and an operator may want to look at it first).
  ARCHIVE_AFTER_S: Int(0),
  // On SIGTERM: how long to keep retrying the batch in hand (Postgres down) before leaving it pending.
  WORKER_SHUTDOWN_TIMEOUT_MS: Int(10000, 0),
  // Operations (API). /metrics on the public port needs this bearer token; without it the route answers 503.
  METRICS_TOKEN: Type.Optional(Type.String({ minLength: 16 })),
  // When set, a second listener serves /metrics, /healthz and /readyz (keep this port off the public network).
  METRICS_PORT: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535 })),
  METRICS_HOST: Type.Optional(Type.String({ minLength: 1 })),
  // Each readiness check (Redis, PostgreSQL, scripts) gives up after this long, so /readyz answers within a second.
  READY_TIMEOUT_MS: Type.Integer({ default: 500, minimum: 1, maximum: 5000 }),
  // The live feed (GET /admin/campaigns/:id/live) reads each watched campaign this often, once per instance
  // whatever the number of viewers; the page needs at least one update a second during a burst.
  LIVE_INTERVAL_MS: Type.Integer({ default: 1000, minimum: 100, maximum: 60_000 }),
  // Waiting rooms (issue 21): each API instance advances every queued campaign this often (advance.lua is
  // atomic and budgets by the time since the last advance, so instances never double-admit). 0: this
  // instance leaves the advancing to the others.
  QUEUE_TICK_MS: Type.Integer({ default: 100, minimum: 0, maximum: 10_000 }),
  // After SIGTERM: time for in-flight requests to finish before the process exits hard.
  SHUTDOWN_GRACE_MS: Int(10_000, 1),
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
