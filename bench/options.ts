import { intOption, parseCli, UsageError, type CliSpec } from '../src/cli.js'

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
  /** Also start a local Redis Cluster and measure the claim path and one slot's ceiling on it. */
  cluster: boolean
  /** Also measure a waiting room's opening (issue 21; bench/scenarios/queue.ts). */
  queue: boolean
}

export const SCENARIOS = ['ceiling', 'issue', 'openLoop', 'soldOut', 'burst', 'persistence', 'wrk', 'baselines'] as const

const BENCH_CLI = {
  command: 'npm run bench --',
  summary: 'Measures the claim path against a bare-route ceiling and three baselines, on its own database and key prefix (dropped afterwards). Progress on stderr, the table on stdout (docs/benchmark.md).',
  options: {
    users: { type: 'string', value: 'N', description: 'distinct users in the burst, one request each (default 20000)' },
    stock: { type: 'string', value: 'S', description: 'stock of the burst campaign (default 2000)' },
    connections: { type: 'string', value: 'C', description: 'concurrent HTTP connections (default 100)' },
    duration: { type: 'string', value: 'D', description: 'seconds measured per throughput scenario (default 10)' },
    warmup: { type: 'string', value: 'W', description: 'unmeasured seconds before each throughput scenario (default 2)' },
    backlog: { type: 'string', value: 'B', description: 'stream entries the workers drain in the persistence scenario (default 100000)' },
    'burst-workers': { type: 'string', value: 'K', description: 'workers running during the burst (default 1)' },
    auth: { type: 'string', value: 'jwt|header', description: 'how requests name their user (default jwt: a new signed token per request)' },
    json: { type: 'string', value: 'FILE', description: 'also write every figure as JSON' },
    'cpu-prof': { type: 'string', value: 'DIR', description: 'write a CPU profile of the API server process into DIR' },
    only: { type: 'string', value: 'LIST', description: `run only these scenarios: ${SCENARIOS.join(',')}` },
    queue: { type: 'boolean', description: 'also measure a waiting room: --users join the pre-queue at full speed (vs the ceiling), Redis bytes per queued user, the opening\'s admissions and the sold-out poll (docs/queue.md)' },
    cluster: { type: 'boolean', description: 'also start a local Redis Cluster (3 masters + 3 replicas, needs redis-server and redis-cli) and measure the issue path and one slot\'s ceiling on it beside the single Redis (docs/scaling.md)' },
  },
  exitCodes: [[0, 'measured, and the burst was correct'], [1, 'the burst\'s correctness check failed, or a scenario failed'], [2, 'bad arguments or configuration']],
  env: ['REDIS_URL', 'DATABASE_URL'],
} satisfies CliSpec

/** Parses argv, or exits: 0 after printing the help, 2 on a bad option or value (src/cli.ts). */
export function parseOptions(argv: string[]): BenchOptions {
  let only: string[] | undefined
  const { values: parsed } = parseCli(BENCH_CLI, argv, (v) => {
    const auth = v.auth ?? 'jwt'
    if (auth !== 'jwt' && auth !== 'header') throw new UsageError(`--auth must be jwt or header (got ${auth})`)
    only = v.only?.split(',').map((s) => s.trim()).filter(Boolean)
    for (const s of only ?? []) {
      if (!(SCENARIOS as readonly string[]).includes(s)) throw new UsageError(`--only: unknown scenario ${s}`)
    }
    for (const [name, min] of [['duration', 0.5], ['warmup', 0]] as const) {
      const raw = v[name]
      if (raw !== undefined && !(Number.isFinite(Number(raw)) && Number(raw) >= min)) throw new UsageError(`--${name} must be a number >= ${min} (got ${raw})`)
    }
    for (const name of ['users', 'stock', 'connections', 'backlog', 'burst-workers'] as const) intOption(name, v[name], 1, 1)
  })
  const int = (name: string, v: string | undefined, def: number) => intOption(name, v, def, 1)
  const num = (v: string | undefined, def: number) => (v === undefined ? def : Number(v))
  const auth = (parsed.auth ?? 'jwt') as 'jwt' | 'header'
  return {
    users: int('users', parsed.users, 20_000),
    stock: int('stock', parsed.stock, 2_000),
    connections: int('connections', parsed.connections, 100),
    duration: num(parsed.duration, 10),
    warmup: num(parsed.warmup, 2),
    backlog: int('backlog', parsed.backlog, 100_000),
    burstWorkers: int('burst-workers', parsed['burst-workers'], 1),
    auth,
    json: parsed.json,
    cpuProf: parsed['cpu-prof'],
    only,
    cluster: parsed.cluster === true,
    queue: parsed.queue === true,
  }
}
