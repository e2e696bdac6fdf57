/**
 * Drain benchmark: rows per second ONE worker persists from a backlog already in the stream, timed from
 * worker start (group creation and first read included) until every row is committed and acked.
 *
 *   npm run bench:drain -- [--entries 100000] [--counts 100,500,2000] [--json FILE] [--cpu-prof DIR]
 *
 * Each COUNT gets a fresh database and key prefix on REDIS_URL / DATABASE_URL's server (defaults:
 * 127.0.0.1), so runs do not disturb each other; both are removed afterwards.
 */
import { writeFileSync } from 'node:fs'
import { intOption, parseCli } from '../src/cli.js'
import type { DrainResult } from './drain.js'

const { values } = parseCli({
  command: 'npm run bench:drain --',
  summary: 'Fills a private stream with claims of one campaign, then times ONE worker (in this process) draining it into a fresh database, once per COUNT. WORKER_INFLIGHT in the environment picks the concurrency.',
  options: {
    entries: { type: 'string', value: 'N', description: 'claims in the backlog (default 100000)' },
    counts: { type: 'string', value: 'LIST', description: 'comma-separated WORKER_COUNT values, one run each (default 100,500,2000)' },
    json: { type: 'string', value: 'FILE', description: 'also write the results as JSON' },
    'cpu-prof': { type: 'string', value: 'DIR', description: 'write a CPU profile of each drain into DIR and print where the time went' },
  },
  exitCodes: [[0, 'measured'], [1, 'a run failed (Redis or PostgreSQL unreachable, ...)'], [2, 'bad arguments']],
  env: ['REDIS_URL', 'DATABASE_URL', 'STREAM_PARTITIONS', 'WORKER_INFLIGHT'],
}, process.argv.slice(2), (v) => {
  intOption('entries', v.entries, 1, 1)
  for (const c of (v.counts ?? '1').split(',')) intOption('counts', c, 1, 1)
})
// Loaded after the arguments are parsed, so --help and a bad option cost no more than node itself.
const [{ drainOnce }, { renderProfile, summarizeProfile }] = await Promise.all([import('./drain.js'), import('./cpu-profile.js')])
const entries = intOption('entries', values.entries, 100_000, 1)
const counts = (values.counts ?? '100,500,2000').split(',').map(Number)
const results: DrainResult[] = []
for (const count of counts) {
  process.stderr.write(`draining ${entries} entries with COUNT ${count}...\n`)
  const cpuProfile = values['cpu-prof'] ? `${values['cpu-prof']}/drain-count-${count}.cpuprofile` : undefined
  const r = await drainOnce({ entries, count, cpuProfile })
  results.push(r)
  console.log(`COUNT ${String(count).padStart(5)}: ${String(r.rowsPerSec).padStart(7)} rows/s  (${r.ms} ms, worker CPU ${r.nodeCpuMs} ms, ${r.batches} batches, rows ${r.rows}, backlog after ${r.backlogAfter})`)
  if (cpuProfile) console.log(renderProfile(summarizeProfile(cpuProfile, 15), entries).replace(/µs\/req/g, 'µs/row'))
}
if (values.json) writeFileSync(values.json, JSON.stringify({ entries, results }, null, 2))
