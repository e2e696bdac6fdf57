/**
 * The ceiling and the issue path once more through wrk (C, one thread), when it is installed: a second
 * load generator whose own cost per request is far below autocannon's, so the ratio is less bound by the
 * generator sharing the machine's two cores. wrk cannot sign a JWT per request, so both servers run the
 * trusted-header deployment here (a new x-user-id per request; bench/wrk-claims.lua).
 */
import { spawn, spawnSync } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { fmtInt } from './progress.js'
import type { HttpFigures } from './env.js'

/** Next to this module in the source and in dist/ (scripts/copy-assets.mjs copies it). */
const SCRIPT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), 'wrk-claims.lua')

/** The figures autocannon's runs report, less what wrk cannot see (CPU per process, status codes by value). */
export type WrkFigures = Omit<HttpFigures, 'cpuUsPerRequest' | 'statusCodes'> & {
  /** Answers outside 2xx/3xx. */
  non2xx: number
}

/** wrk's version line, or null when it is not installed. */
export function wrkVersion(): string | null {
  const r = spawnSync('wrk', ['--version'], { encoding: 'utf8' })
  if (r.error) return null
  return /wrk \S+/.exec(`${r.stdout}${r.stderr}`)?.[0] ?? 'wrk'
}

export async function runWrk(url: string, opts: { connections: number; seconds: number; header: string;
  userPrefix: string }): Promise<WrkFigures> {
  const child = spawn('wrk', ['-t1', `-c${opts.connections}`, `-d${Math.max(1, Math.round(opts.seconds))}s`,
    '--timeout', '30s', '-s', SCRIPT, url], {
    env: { ...process.env, WRK_USER_HEADER: opts.header, WRK_USER_PREFIX: opts.userPrefix },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr.on('data', (d: Buffer) => { out += d.toString() })
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve))
  const line = /WRK_JSON (\{.*\})/.exec(out)?.[1]
  if (code !== 0 || !line) throw new Error(`wrk exited ${code}: ${out.slice(-2000)}`)
  const r = JSON.parse(line) as { requests: number; durationUs: number; p50Us: number; p95Us: number;
    p99Us: number; maxUs: number; errors: number; non2xx: number }
  const seconds = r.durationUs / 1e6
  return {
    rps: r.requests / seconds, requests: r.requests, seconds,
    p50Ms: r.p50Us / 1000, p95Ms: r.p95Us / 1000, p99Ms: r.p99Us / 1000, maxMs: r.maxUs / 1000,
    errors: r.errors, non2xx: r.non2xx,
  }
}

export const wrkLine = (f: WrkFigures) =>
  `${fmtInt(f.rps)} req/s, p99 ${f.p99Ms.toFixed(1)} ms${f.non2xx ? `, ${fmtInt(f.non2xx)} non-2xx` : ''}${f.errors ? `, ${f.errors} errors` : ''}`
