/** Messages between the bench orchestrator and the load-generator process (over the IPC channel). */

export interface LoadJob {
  url: string
  method: 'POST' | 'GET'
  connections: number
  /** Run for this many seconds... */
  duration?: number
  /** ...or until this many requests have been answered. */
  amount?: number
  auth: { kind: 'jwt'; secret: string } | { kind: 'header'; header: string }
  /** User ids are `${userPrefix}${n}`; n counts up across the whole job. */
  userPrefix: string
  /** Consecutive requests that name the same user (1: every request a new user; 2: double-clicks). */
  perUser: number
  timeoutS: number
}

interface LatencyMs { p50: number; p95: number; p99: number; max: number; mean: number }

export interface LoadResult {
  requests: number
  errors: number
  timeouts: number
  statusCodes: Record<string, number>
  /** Epoch ms, load-generator clock (the same machine's clock as the orchestrator's). */
  startedAt: number
  endedAt: number
  seconds: number
  rps: number
  latencyMs: LatencyMs
  first201At: number | null
  last201At: number | null
  first410At: number | null
  /** Answers by status per bucketMs since startedAt (the chart's timeline). */
  timeline: { bucketMs: number; buckets: Record<string, number>[] }
}

export type ToLoadGenerator = { type: 'run'; id: number; job: LoadJob } | { type: 'exit' }
export type FromLoadGenerator =
  | { type: 'ready' }
  | { type: 'progress'; id: number; second: number; rps: number }
  | { type: 'result'; id: number; result: LoadResult }
  | { type: 'error'; id: number; message: string }
