/** What a baseline claim answers, and what its correctness check finds afterwards. */
export type BaselineOutcome =
  | { kind: 'issued'; sequence: number }
  | { kind: 'at_limit' }
  | { kind: 'sold_out' }
  | { kind: 'not_found' }
  | { kind: 'busy' }

export interface BaselineCheck {
  issued: number
  /** Claims beyond the stock. */
  oversold: number
  /** Claims beyond the first one of a user (every baseline campaign has a per-user limit of 1). */
  doubleIssued: number
  /** Sequences handed out more than once. */
  duplicateSequences: number
}

export function checkIssued(records: { user: string; sequence: number }[], stock: number): BaselineCheck {
  const users = new Set(records.map((r) => r.user))
  const seqs = new Set(records.map((r) => r.sequence))
  return {
    issued: records.length,
    oversold: Math.max(0, records.length - stock),
    doubleIssued: records.length - users.size,
    duplicateSequences: records.length - seqs.size,
  }
}
