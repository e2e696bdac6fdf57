/** What reconcile found, per campaign and class: the table and the --json document are both made from this. */

/** The classes, in the order the table shows them. Only inFlight is not drift. */
const CLASSES = {
  inFlight: 'issued in Redis, not yet in the database, still in the stream (fine)',
  lost: 'issued in Redis, in no stream and not in the database (--fix re-enqueues)',
  redisLost: 'in the database or stream but missing from Redis records or beyond issued (--fix restores)',
  liveStateMissing: 'campaign in the database, its live state missing from Redis (--fix rebuilds)',
  counters: 'counters or settings in Redis disagree with their records or the database',
  lifecycle: 'cancelled or expired in Redis, still active in the database, with no event on the way ' +
    '(--fix re-enqueues the event)',
  deadLettered: 'issued, not persisted: in failed_claims (run npm run retry-failed)',
  conflicts: 'one sequence held by two different claims (needs a person)',
  gaps: 'sequences issued but held by no claim anywhere (lost for good)',
  evicted: 'drift while Redis reports evicted keys (INFO evicted_keys > 0): answered claims may be gone from ' +
    'every place; --fix refuses to rebuild (docs/operations.md)',
} as const

export type ClassName = keyof typeof CLASSES
export const CLASS_NAMES = Object.keys(CLASSES) as ClassName[]
export const MAX_EXAMPLES = 5

export interface Example { claimId?: string; userId?: string; sequence?: number; detail?: string }

export interface ClassReport { count: number; examples: Example[]; fixed: number }

export interface CampaignReport {
  campaignId: string
  name: string
  /** Redis's issued counter when the check started (null: live state missing). */
  issued: number | null
  /** Rows in the claims table. */
  persisted: number
  classes: Record<ClassName, ClassReport>
  /** Sum of the drift classes (everything but inFlight) as found. */
  drift: number
  /** With --fix: drift left after the repair, by a second full check. */
  remaining: number | null
  remainingClasses: Partial<Record<ClassName, number>> | null
}

/** One automatic recovery (src/recovery/, table `recoveries`), as reconcile lists it. */
export interface RecoveryReport {
  campaignId: string; reason: string; node: string; instance: string; startedAt: string; finishedAt: string
  found: Record<string, number>; restored: number; reenqueued: number; liveState: string | null
}

export interface RunReport {
  ok: boolean
  exitCode: 0 | 1 | 2
  fix: boolean
  campaigns: CampaignReport[]
  totals: Record<ClassName, number>
  /** INFO stats evicted_keys summed over masters when the run started (null: not read). */
  evictedKeys: number | null
  /** The latest automatic recoveries (newest first, at most 20; of --campaign only when given). */
  recoveries?: RecoveryReport[]
  error?: string
  elapsedMs: number
  peakRssBytes: number
}

export function emptyClasses(): Record<ClassName, ClassReport> {
  const out = {} as Record<ClassName, ClassReport>
  for (const c of CLASS_NAMES) out[c] = { count: 0, examples: [], fixed: 0 }
  return out
}

export function addExample(cls: ClassReport, ex: Example): void {
  if (cls.examples.length >= MAX_EXAMPLES) return
  if (ex.claimId && cls.examples.some((e) => e.claimId === ex.claimId)) return
  cls.examples.push(ex)
}

export function driftOf(classes: Record<ClassName, { count: number }>): number {
  let n = 0
  for (const c of CLASS_NAMES) if (c !== 'inFlight') n += classes[c].count
  return n
}
