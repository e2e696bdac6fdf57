import { parseArgs } from 'node:util'

export interface BenchOptions {
  /** Distinct users in the burst (each sends one request). */
  users: number
  /** Stock of the burst campaign. */
  stock: number
  connections: number
  /** Seconds each throughput scenario is measured for (after its warm-up). */
  duration: number
  /** Seconds of unmeasured load before each throughput scenario, so the JIT has settled. */
  warmup: number
  /** Entries in the stream backlog the workers drain. */
  backlog: number
  /** Workers running during the burst. */
  burstWorkers: number
  /** jwt: a freshly signed HS256 token per request; header: TRUSTED_USER_HEADER deployments. */
  auth: 'jwt' | 'header'
  json?: string
  /** Write a V8 CPU profile of the API process to this directory (node --cpu-prof). */
  cpuProf?: string
  /** Only run these scenarios (comma-separated names), for profiling one path. */
  only?: string[]
}

export const SCENARIOS = ['ceiling', 'issue', 'soldOut', 'burst', 'persistence', 'baselines'] as const

const USAGE = `usage: npm run bench -- [--users N] [--stock S] [--connections C] [--duration D] [--json FILE]
  --users N         distinct users in the burst, one request each (default 20000)
  --stock S         stock of the burst campaign (default 2000)
  --connections C   concurrent HTTP connections (default 100)
  --duration D      seconds measured per throughput scenario (default 10)
  --warmup W        unmeasured seconds before each throughput scenario (default 2)
  --backlog B       stream entries the workers drain in the persistence scenario (default 100000)
  --burst-workers K workers running during the burst (default 1)
  --auth jwt|header how requests name their user (default jwt: a new signed token per request)
  --json FILE       also write every figure as JSON
  --cpu-prof DIR    write a CPU profile of the API server process into DIR
  --only LIST       run only these scenarios: ${SCENARIOS.join(',')}`

export class UsageError extends Error {}

export function parseOptions(argv: string[]): BenchOptions {
  let parsed
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        users: { type: 'string' }, stock: { type: 'string' }, connections: { type: 'string' }, duration: { type: 'string' },
        warmup: { type: 'string' }, backlog: { type: 'string' }, 'burst-workers': { type: 'string' }, auth: { type: 'string' },
        json: { type: 'string' }, 'cpu-prof': { type: 'string' }, only: { type: 'string' }, help: { type: 'boolean',
          short: 'h' },
      },
      strict: true,
    }).values
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\n${USAGE}`)
  }
  if (parsed.help) throw new UsageError(USAGE)
  const int = (name: string, v: string | undefined, def: number, min: number): number => {
    if (v === undefined) return def
    const n = Number(v)
    if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name} must be an integer >= ${min} (got ${v})\n${USAGE}`)
    return n
  }
  const num = (name: string, v: string | undefined, def: number, min: number): number => {
    if (v === undefined) return def
    const n = Number(v)
    if (!Number.isFinite(n) || n < min) throw new UsageError(`--${name} must be a number >= ${min} (got ${v})\n${USAGE}`)
    return n
  }
  const auth = parsed.auth ?? 'jwt'
  if (auth !== 'jwt' && auth !== 'header') throw new UsageError(`--auth must be jwt or header (got ${auth})\n${USAGE}`)
  const only = parsed.only?.split(',').map((s) => s.trim()).filter(Boolean)
  for (const s of only ?? []) {
    if (!(SCENARIOS as readonly string[]).includes(s)) throw new UsageError(`--only: unknown scenario ${s}\n${USAGE}`)
  }
  return {
    users: int('users', parsed.users, 20_000, 1),
    stock: int('stock', parsed.stock, 2_000, 1),
    connections: int('connections', parsed.connections, 100, 1),
    duration: num('duration', parsed.duration, 10, 0.5),
    warmup: num('warmup', parsed.warmup, 2, 0),
    backlog: int('backlog', parsed.backlog, 100_000, 1),
    burstWorkers: int('burst-workers', parsed['burst-workers'], 1, 1),
    auth,
    json: parsed.json,
    cpuProf: parsed['cpu-prof'],
    only,
  }
}
