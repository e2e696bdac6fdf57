/** The human-readable table; --json prints the RunReport itself, so both carry the same content. */
import { CLASS_NAMES, type CampaignReport, type ClassName, type Example, type RunReport } from './report.js'

const LABELS: Record<ClassName, string> = {
  inFlight: 'in flight (ok)',
  lost: 'LOST',
  redisLost: 'Redis lost data',
  liveStateMissing: 'live state missing',
  counters: 'counters/settings',
  lifecycle: 'cancellations not in the database',
  deadLettered: 'dead-lettered',
  conflicts: 'conflicts',
  gaps: 'gaps',
  evicted: 'EVICTED (Redis)',
}

function example(e: Example): string {
  const parts: string[] = []
  if (e.sequence !== undefined) parts.push(`seq ${e.sequence}`)
  if (e.claimId) parts.push(`claim ${e.claimId}`)
  if (e.userId !== undefined) parts.push(`user ${e.userId}`)
  if (e.detail) parts.push(parts.length ? `(${e.detail})` : e.detail)
  return parts.join('  ')
}

export function formatCampaign(r: CampaignReport, fix: boolean): string {
  const lines: string[] = []
  const issued = r.issued === null ? 'no live state' : `issued ${r.issued}`
  let status = r.drift === 0 ? 'agrees' : `drift ${r.drift}`
  if (fix && r.drift > 0) {
    if (r.classes.evicted.count > 0) {
      status += ', NOT repaired: Redis evicted keys, a rebuild would hand out sequences again'
    } else status += r.remaining === 0 ? ', all fixed' : `, ${r.remaining} left after --fix`
  }
  lines.push(`campaign ${r.campaignId} ${JSON.stringify(r.name)}: ${issued}, ${r.persisted} rows; ${status}`)
  const w = Math.max(...CLASS_NAMES.map((c) => LABELS[c].length))
  lines.push(`  ${'class'.padEnd(w)}  ${'count'.padStart(8)}${fix ? `  ${'fixed'.padStart(8)}` : ''}`)
  for (const c of CLASS_NAMES) {
    const cls = r.classes[c]
    const fixed = fix ? `  ${(c === 'inFlight' ? '-' : String(cls.fixed)).padStart(8)}` : ''
    lines.push(`  ${LABELS[c].padEnd(w)}  ${String(cls.count).padStart(8)}${fixed}`)
    for (const e of cls.examples) lines.push(`      ${example(e)}`)
  }
  return lines.join('\n')
}

/** The automatic recoveries reconcile lists (src/recovery/), or '' when there were none. */
export function formatRecoveries(run: RunReport): string {
  const rows = run.recoveries ?? []
  if (rows.length === 0) return ''
  const lines = [`automatic recoveries after a Redis restart or failover (latest ${rows.length}, newest first):`]
  for (const r of rows) {
    const found = Object.entries(r.found).map(([c, n]) => `${LABELS[c as ClassName] ?? c} ${n}`).join(', ')
    const ms = Date.parse(r.finishedAt) - Date.parse(r.startedAt)
    lines.push(`  ${r.finishedAt}  campaign ${r.campaignId}  ${r.reason === 'rebuilt' ? 'rebuilt from PostgreSQL'
      : 'checked against PostgreSQL'} in ${ms} ms by ${r.instance}: ${found || 'no drift'}; ` +
      `${r.restored} claim(s) restored to users, ${r.reenqueued} re-enqueued`)
  }
  return lines.join('\n')
}

export function formatSummary(run: RunReport): string {
  if (run.error) return `reconcile failed: ${run.error}`
  const withDrift = run.campaigns.filter((c) => c.drift > 0).length
  const evicted = run.evictedKeys
    ? `Redis has evicted ${run.evictedKeys} key(s) since it started (maxmemory-policy must be noeviction); ` +
      'answered claims may be lost and nothing was rebuilt. See docs/operations.md ("Redis evicted keys"). '
    : ''
  const evictedVerdict = withDrift > 0
    ? 'drift left unrepaired'
    : 'no drift seen, but the evidence stays until an operator clears it'
  const verdict = evicted ? evicted + evictedVerdict : run.exitCode === 0
    ? (withDrift > 0 ? 'all drift fixed' : 'Redis and the database agree')
    : (run.fix ? 'drift remains after --fix' : 'drift found (run with --fix to repair)')
  return `${run.campaigns.length} campaign(s) checked, ${withDrift} with drift: ${verdict}. ` +
    `(${(run.elapsedMs / 1000).toFixed(1)} s, peak RSS ${(run.peakRssBytes / 1048576).toFixed(0)} MB)`
}
