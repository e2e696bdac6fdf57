import type { Child } from './processes.js'
import type { FromLoadGenerator, LoadJob, LoadResult } from './load-protocol.js'

/** The orchestrator's side of the load generator: one job at a time, progress through a callback. */
export class LoadClient {
  private nextId = 1
  private pending = new Map<number, {
    resolve: (r: LoadResult) => void
    reject: (e: Error) => void
    progress?: (s: number, rps: number) => void
  }>()
  readonly ready: Promise<void>
  private readonly proc: Child

  constructor(proc: Child) {
    this.proc = proc
    let markReady!: () => void
    this.ready = new Promise((r) => { markReady = r })
    proc.child.on('message', (m: FromLoadGenerator) => {
      if (m.type === 'ready') return markReady()
      const p = this.pending.get(m.id)
      if (!p) return
      if (m.type === 'progress') return p.progress?.(m.second, m.rps)
      this.pending.delete(m.id)
      if (m.type === 'result') p.resolve(m.result)
      else p.reject(new Error(`load generator: ${m.message}`))
    })
    proc.child.on('exit', (code) => {
      for (const p of this.pending.values()) p.reject(new Error(`load generator exited (${code})`))
      this.pending.clear()
    })
  }

  get pid(): number | undefined { return this.proc.child.pid }

  run(job: LoadJob, progress?: (second: number, rps: number) => void): Promise<LoadResult> {
    const id = this.nextId++
    // A job sent to a generator that has already exited would wait for an answer for good.
    const { child } = this.proc
    if (child.exitCode !== null || child.signalCode !== null || !child.connected) {
      return Promise.reject(new Error(`load generator exited (${child.exitCode ?? child.signalCode}) before the ` +
        `job for ${job.url}`))
    }
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, progress })
      this.proc.child.send({ type: 'run', id, job })
    })
  }

  async close(): Promise<void> {
    if (this.proc.child.connected) this.proc.child.send({ type: 'exit' })
    await this.proc.stop(3_000)
  }
}
