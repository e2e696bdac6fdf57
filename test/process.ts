/** Child processes of the tests, one way: the build's entry points, run to completion or started and stopped. */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { readdirSync, statSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
// Coverage is taken in the test processes only. The API, worker and script processes a test starts
// inherited tap's NODE_V8_COVERAGE: each ran instrumented and wrote a report that the summary did not count
// (96.6 % of lines with them and without them), on a suite that is CPU-bound on this machine.
delete process.env.NODE_V8_COVERAGE

/**
 * Node arguments that run an entry point (e.g. 'src/server') from the build, as production does.
 * Child processes start in a fraction of tsx's time and CPU; `npm test` builds first, and
 * a build older than its sources fails loudly instead of testing stale code.
 */
export function entryArgs(rel: string): string[] {
  assertFreshBuild()
  return ['--enable-source-maps', '--import', path.join(ROOT, 'dist/src/esm-fast-path.js'),
    path.join(ROOT, 'dist', `${rel}.js`)]
}

let checked = false
function assertFreshBuild() {
  if (checked) return
  for (const dir of ['src', 'scripts', 'bench']) {
    for (const f of readdirSync(path.join(ROOT, dir), { recursive: true, encoding: 'utf8' })) {
      if (!f.endsWith('.ts') || f.endsWith('.d.ts')) continue
      const built = path.join(ROOT, 'dist', dir, f.replace(/\.ts$/, '.js'))
      let builtAt = 0
      try { builtAt = statSync(built).mtimeMs } catch { /* missing: stale */ }
      if (builtAt < statSync(path.join(ROOT, dir, f)).mtimeMs) {
        throw new Error(`${built} is missing or older than ${dir}/${f}: run \`npm run build\` (npm test does)`)
      }
    }
  }
  checked = true
}

export interface RunResult { code: number | null; stdout: string; stderr: string }

/** Runs a command to completion (stdout and stderr kept apart); SIGKILL and a rejection after timeoutMs. */
export function runToEnd(cmd: string, args: string[], env: Record<string, string> = {},
  timeoutMs = 120_000): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => { stdout += d })
    child.stderr.on('data', (d) => { stderr += d })
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`${cmd} ${args.join(' ')} timed out:\n${stdout}\n${stderr}`))
    }, timeoutMs)
    child.on('error', (err) => { clearTimeout(timer); reject(err) })
    // 'close', not 'exit': the output is complete once the pipes are.
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }) })
  })
}

interface Tap { teardown(fn: () => unknown): void }

export interface Started {
  child: ChildProcess
  /** stdout and stderr so far, interleaved. */
  output: () => string
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

/**
 * Starts a long-running child (server, worker) from the build; at teardown one still running is
 * continued (it may be SIGSTOPped) and killed.
 */
export function startProcess(t: Tap, args: string[], env: Record<string, string>): Started {
  const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout!.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr!.on('data', (d: Buffer) => { out += d.toString() })
  const exited = once(child, 'exit').then(([code, signal]) => ({ code: code as number | null,
    signal: signal as NodeJS.Signals | null }))
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGCONT')
      child.kill('SIGKILL')
    }
    await exited
  })
  return { child, output: () => out, exited }
}

/** Signals a child (SIGTERM: a graceful stop) unless it has exited already; resolves with how it ended. */
export async function stopProcess(p: ChildProcess | { child: ChildProcess },
  signal: NodeJS.Signals = 'SIGTERM'): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  const child = 'child' in p ? p.child : p
  if (child.exitCode === null && child.signalCode === null) {
    const exited = once(child, 'exit')
    child.kill(signal)
    await exited
  }
  return { code: child.exitCode, signal: child.signalCode }
}
