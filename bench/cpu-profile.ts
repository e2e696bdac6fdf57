/**
 * Summarizes a V8 .cpuprofile (node --cpu-prof): where the process spent its time, by function and by
 * package, with the idle time left out, so "what does one claim cost" reads off the top of the list.
 */
import { readFileSync, readdirSync } from 'node:fs'
import path from 'node:path'

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  hitCount?: number
}
interface Profile { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] }

export interface ProfileSummary { file: string; busyMs: number; idleMs: number; functions: Row[]; packages: Row[] }
interface Row { name: string; ms: number; share: number }

function packageOf(url: string, fn: string): string {
  if (!url) return fn.startsWith('(') ? fn : '(native)'
  const nm = url.lastIndexOf('node_modules/')
  if (nm >= 0) {
    const rest = url.slice(nm + 'node_modules/'.length).split('/')
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!
  }
  if (url.startsWith('node:')) return 'node core'
  return 'fcfs'
}

export function summarizeProfile(file: string, top = 25): ProfileSummary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile
  const byId = new Map(p.nodes.map((n) => [n.id, n]))
  const self = new Map<number, number>()
  for (let i = 0; i < p.samples.length; i++) self.set(p.samples[i]!,
    (self.get(p.samples[i]!) ?? 0) + (p.timeDeltas[i] ?? 0))
  const fns = new Map<string, number>()
  const pkgs = new Map<string, number>()
  let idle = 0
  let busy = 0
  for (const [id, us] of self) {
    const n = byId.get(id)!
    const { functionName, url, lineNumber } = n.callFrame
    if (functionName === '(idle)') { idle += us; continue }
    busy += us
    const short = url ? `${url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*?\/(dist|src|bench)\//, '$1/')}:${lineNumber + 1}` : ''
    const key = `${functionName || '(anonymous)'}${short ? ` ${short}` : ''}`
    fns.set(key, (fns.get(key) ?? 0) + us)
    const pkg = packageOf(url, functionName)
    pkgs.set(pkg, (pkgs.get(pkg) ?? 0) + us)
  }
  const rows = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]).slice(0, top)
    .map(([name, us]) => ({ name, ms: us / 1000, share: busy ? us / busy : 0 }))
  return { file, busyMs: busy / 1000, idleMs: idle / 1000, functions: rows(fns), packages: rows(pkgs) }
}

export function latestProfile(dir: string): string | null {
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).sort()
  return files.length ? path.join(dir, files[files.length - 1]!) : null
}

export function renderProfile(s: ProfileSummary, requests: number | null): string {
  const perReq = (ms: number) => (requests ? `  ${((ms * 1000) / requests).toFixed(2)} µs/req` : '')
  const fmt = (r: Row) => `  ${(r.share * 100).toFixed(1).padStart(5)}%  ${r.ms.toFixed(0).padStart(7)} ms${perReq(r.ms)}  ${r.name}`
  return [
    `CPU profile ${s.file}: busy ${s.busyMs.toFixed(0)} ms, idle ${s.idleMs.toFixed(0)} ms${requests ? `, ${requests} requests answered` : ''}`,
    'self time by package:', ...s.packages.slice(0, 12).map(fmt),
    'self time by function:', ...s.functions.map(fmt),
  ].join('\n')
}

// `node dist/bench/cpu-profile.js FILE_OR_DIR [requests]` prints the summary of one profile.
if (process.argv[1] && import.meta.url.endsWith(path.basename(process.argv[1]))) {
  const arg = process.argv[2]
  if (!arg) {
    console.error('usage: cpu-profile FILE.cpuprofile|DIR [requests]')
    process.exit(2)
  }
  const file = arg.endsWith('.cpuprofile') ? arg : latestProfile(arg)
  if (!file) throw new Error(`no .cpuprofile in ${arg}`)
  console.log(renderProfile(summarizeProfile(file), process.argv[3] ? Number(process.argv[3]) : null))
}
