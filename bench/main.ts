/**
 * npm run bench (options: bench/options.ts): the orchestrator. Sets up a private environment (setup.ts),
 * runs the chosen scenarios (one file each in scenarios/) and reports; it measures nothing itself.
 */
import os from 'node:os'
import { existsSync, writeFileSync } from 'node:fs'
import { parseOptions, SCENARIOS } from './options.js'
import type { BenchResults } from './results.js'

const opts = parseOptions(process.argv.slice(2))
// Loaded after the arguments are parsed, so --help and a bad option cost no more than node itself.
const [{ latestProfile, renderProfile, summarizeProfile }, { loadConfigOrExit }, { createProgress },
  { describeMachine, renderTable, summarize }, { createEnv, destroyEnv }, { profileDir, startApi }, { renderChart }] =
  await Promise.all([
    import('./cpu-profile.js'), import('../src/config.js'), import('./progress.js'), import('./report.js'),
    import('./setup.js'), import('./env.js'), import('./chart.js'),
  ])
const [{ runCeiling }, { runIssue }, { runOpenLoop }, { runSoldOut }, { runBurst }, { runBacklogs },
  { runWrkScenarios }, { runBaselines }] = await Promise.all([
  import('./scenarios/ceiling.js'), import('./scenarios/issue.js'), import('./scenarios/open-loop.js'),
  import('./scenarios/sold-out.js'), import('./scenarios/burst.js'), import('./scenarios/persistence.js'),
  import('./scenarios/wrk.js'), import('./scenarios/baselines.js'),
])

/** The servers' CPU profiles, per request of the scenarios each served (warm-ups included, roughly). */
function printProfiles(e: typeof env, r: BenchResults) {
  const served = (...f: ({ requests: number } | null)[]) => f.reduce((a, x) => a + (x?.requests ?? 0), 0)
  for (const [name, requests] of [['ceiling', served(r.ceiling)], ['api', served(r.issue, r.soldOut, r.burst)]] as const) {
    const dir = profileDir(e, name)
    const file = existsSync(dir) ? latestProfile(dir) : null
    if (file) progress.step(`\n${renderProfile(summarizeProfile(file), requests || null)}`)
  }
}

const config = loadConfigOrExit('script', 2)

const wanted = new Set<string>(opts.only ?? SCENARIOS)
const progress = createProgress()
const started = Date.now()
const env = await createEnv(opts, progress, config)
let failed = false
const abort = (why: string, exitCode: number) => {
  progress.step(`${why}: cleaning up, logs kept in ${env.logDir}`)
  // The cleanup is bounded: a signal or a crash never leaves the bench, or the servers it started, running.
  setTimeout(() => process.exit(exitCode), 15_000).unref()
  destroyEnv(env, true).finally(() => process.exit(exitCode))
}
const onSignal = (signal: NodeJS.Signals) => abort(`interrupted (${signal})`, 130)
process.once('SIGINT', onSignal)
process.once('SIGTERM', onSignal)
// An error thrown outside the scenarios' awaits (a client's unheard 'error' event) once ended the bench and
// left its API server running.
process.once('uncaughtException', (err) => abort(`bench failed: ${err.stack ?? err}`, 1))

try {
  const machine = await describeMachine(env.redis, env.sql, opts)
  const results: BenchResults = { ceiling: null, issue: null, soldOut: null, burst: null, persistence: null,
    wrk: null, baselines: null, openLoop: null, openLoopCeiling: null }
  if (wanted.has('ceiling')) results.ceiling = await runCeiling(env)
  if (opts.queue || opts.cluster || ['issue', 'openLoop', 'soldOut', 'burst', 'persistence'].some((s) => wanted.has(s))) {
    const api = await startApi(env)
    try {
      if (wanted.has('issue')) results.issue = await runIssue(env, api)
      // Needs the closed-loop maximum of the same run: 25/50/75 % of it.
      if (wanted.has('openLoop') && results.issue) {
        ({ claims: results.openLoop, ceiling: results.openLoopCeiling } =
          await runOpenLoop(env, api, results.issue.rps, { ceiling: wanted.has('ceiling') }))
      }
      if (opts.queue) {
        results.queue = await (await import('./scenarios/queue.js')).runQueue(env, api, results.ceiling?.rps ?? null)
      }
      if (opts.cluster) results.cluster = await (await import('./scenarios/cluster.js')).runCluster(env, api)
      if (wanted.has('soldOut')) results.soldOut = await runSoldOut(env, api)
      let drainMs: number | null = null
      let workersAvailable = true
      if (wanted.has('burst')) ({ burst: results.burst, drainMs, workersAvailable } = await runBurst(env, api.url))
      if (wanted.has('persistence')) {
        const { one, two } = await runBacklogs(env, api.url)
        results.persistence = {
          workersAvailable: workersAvailable && one !== null, burstWorkers: opts.burstWorkers, drainMs,
          backlog: opts.backlog,
          rowsPerSecOneWorker: one, rowsPerSecTwoWorkers: two,
          notes: one === null ? ['no worker entry point: not measured'] : [],
        }
      }
    } finally {
      await api.proc.stop()
    }
  }
  if (wanted.has('wrk')) results.wrk = await runWrkScenarios(env)
  if (wanted.has('baselines')) results.baselines = await runBaselines(env)
  if (wanted.has('recovery')) results.recovery = await (await import('./scenarios/recovery.js')).runRecovery(env)

  machine.loadAverageAfter = os.loadavg().map((n) => Math.round(n * 100) / 100)
  const command = `npm run bench --${process.argv.slice(2).map((a) => ` ${a}`).join('')}`.replace(/ --$/, '')
  const summary = summarize(results, machine, opts, command)
  progress.step(`done in ${((Date.now() - started) / 1000).toFixed(0)} s\n`)
  console.log(renderTable(summary))
  if (results.queue) console.log((await import('./scenarios/queue.js')).renderQueue(results.queue))
  if (opts.cpuProf) printProfiles(env, results)
  if (opts.json) {
    writeFileSync(opts.json, `${JSON.stringify(summary, null, 2)}\n`)
    const svg = opts.json.replace(/(\.json)?$/, '.svg')
    writeFileSync(svg, renderChart(summary))
    progress.step(`wrote ${opts.json} and ${svg}`)
  }
  if (summary.burst && !summary.burst.correct) failed = true
} catch (err) {
  failed = true
  progress.step(`bench failed: ${(err as Error).stack ?? err}`)
  progress.step(`logs kept in ${env.logDir}`)
} finally {
  await destroyEnv(env, failed)
}
process.exitCode = failed ? 1 : 0
