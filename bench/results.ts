/** Everything one bench run measured, by scenario (bench/report.ts turns it into the table and JSON). */
import type { HttpFigures } from './env.js'
import type { BurstFigures } from './scenarios/burst.js'
import type { RoundTrips } from './scenarios/issue.js'
import type { WrkResults } from './scenarios/wrk.js'
import type { Baselines } from './scenarios/baselines.js'
import type { ClusterFigures } from './scenarios/cluster.js'
import type { OpenLoopFigures } from './scenarios/open-loop.js'
import type { QueueBenchFigures } from './scenarios/queue.js'
import type { RecoveryFigures } from './scenarios/recovery.js'

export interface BenchResults {
  ceiling: HttpFigures | null
  issue: (HttpFigures & { redis?: RoundTrips }) | null
  soldOut: HttpFigures | null
  burst: BurstFigures | null
  persistence: {
    workersAvailable: boolean
    burstWorkers: number
    drainMs: number | null
    backlog: number
    rowsPerSecOneWorker: number | null
    rowsPerSecTwoWorkers: number | null
    notes: string[]
  } | null
  wrk: WrkResults | null
  baselines: Baselines | null
  cluster?: ClusterFigures | null
  /** Constant arrival rate at 25/50/75 % of issue.rps (bench/open-loop.ts); null when not run. */
  openLoop: OpenLoopFigures[] | null
  /** The bare route at openLoop's rates, each right after its claims run (with the ceiling scenario). */
  openLoopCeiling: OpenLoopFigures[] | null
  queue?: QueueBenchFigures | null
  /** A fenced campaign's recovery from PostgreSQL, per --recovery-claims size and loss; absent when not run. */
  recovery?: RecoveryFigures[] | null
}
