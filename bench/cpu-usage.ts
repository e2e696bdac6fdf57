import { readFileSync } from 'node:fs'

/** CPU seconds (user + system) a process has used so far, from /proc; null where there is no /proc. */
export function cpuSeconds(pid: number | null | undefined): number | null {
  if (!pid) return null
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after the command name (which may hold spaces) start at the last ')'.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(f[11]) + Number(f[12])) / CLOCK_TICKS
  } catch {
    return null
  }
}

// USER_HZ is 100 on every mainstream Linux build; /proc reports times in it.
const CLOCK_TICKS = 100

export type CpuSample = Record<string, number | null>

export function sampleCpu(pids: Record<string, number | null | undefined>): CpuSample {
  return Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuSeconds(pid)]))
}

/** CPU microseconds per request of each process between two samples. */
export function cpuPerRequest(before: CpuSample, after: CpuSample, requests: number): Record<string, number | null> {
  return Object.fromEntries(Object.keys(before).map((k) => {
    const a = before[k]
    const b = after[k]
    return [k, a == null || b == null || requests === 0 ? null : ((b - a) * 1e6) / requests]
  }))
}
