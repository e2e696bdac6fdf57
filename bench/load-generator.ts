/**
 * The load generator: its own process, so autocannon's CPU is not charged to the orchestrator (and, like
 * the server, it gets a core of its own as far as the machine allows). Driven over IPC by load-client.ts.
 */
import autocannon from 'autocannon'
import * as hdr from 'hdr-histogram-js'
import { createSigner } from './tokens.js'
import type { FromLoadGenerator, LoadJob, LoadResult, ToLoadGenerator } from './load-protocol.js'

const send = (m: FromLoadGenerator) => process.send!(m)

function run(id: number, job: LoadJob): Promise<LoadResult> {
  // Microseconds, 3 significant digits: enough for a p99 of a few ms and a max of seconds.
  const hist = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000,
    numberOfSignificantValueDigits: 3 })
  const sign = job.auth.kind === 'jwt' ? createSigner(job.auth.secret) : null
  const header = job.auth.kind === 'header' ? job.auth.header : ''
  let n = 0
  const nextHeaders = (): Record<string, string> => {
    const user = job.userPrefix + Math.floor(n++ / job.perUser)
    return sign ? { authorization: `Bearer ${sign(user)}` } : { [header]: user }
  }
  const statusCodes: Record<string, number> = {}
  let first201At: number | null = null
  let last201At: number | null = null
  let first410At: number | null = null
  let lastResponseAt = 0
  // 100 ms buckets: a 20k-user burst lasts a few seconds, so the chart still has tens of points.
  const bucketMs = 100
  const buckets: Record<string, number>[] = []

  return new Promise((resolve, reject) => {
    const startedAt = Date.now()
    const instance = autocannon({
      url: job.url,
      method: job.method,
      connections: job.connections,
      ...(job.amount ? { amount: job.amount } : { duration: job.duration ?? 10 }),
      timeout: job.timeoutS,
      // A new user on every request: the headers are built per request (the ceiling pays the same).
      requests: [{ setupRequest: (req) => ({ ...req, headers: nextHeaders() }) }],
    }, (err, res) => {
      if (err) return reject(err)
      // autocannon notices the end on its 1 s tick: an amount run ends at its last answer, not then.
      const endedAt = job.amount ? lastResponseAt || Date.now() : Date.now()
      const requests = Object.values(statusCodes).reduce((a, b) => a + b, 0)
      const seconds = (endedAt - startedAt) / 1000
      const at = (p: number) => hist.getValueAtPercentile(p) / 1000
      resolve({
        requests, errors: res.errors, timeouts: res.timeouts, statusCodes,
        startedAt, endedAt, seconds,
        // Duration runs: autocannon's own clock excludes connection set-up and the final drain.
        rps: job.amount ? requests / seconds : requests / (res.duration || seconds),
        latencyMs: { p50: at(50), p95: at(95), p99: at(99), max: hist.maxValue / 1000, mean: hist.mean / 1000 },
        first201At, last201At, first410At,
        timeline: { bucketMs, buckets: Array.from(buckets, (b) => b ?? {}) },
      })
      hist.destroy()
    })
    instance.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTimeMs: number) => {
      lastResponseAt = Date.now()
      const b = (buckets[Math.floor((lastResponseAt - startedAt) / bucketMs)] ??= {})
      b[statusCode] = (b[statusCode] ?? 0) + 1
      hist.recordValue(Math.max(1, Math.round(responseTimeMs * 1000)))
      statusCodes[statusCode] = (statusCodes[statusCode] ?? 0) + 1
      if (statusCode === 201) {
        last201At = Date.now()
        first201At ??= last201At
      } else if (statusCode === 410 && first410At === null) first410At = Date.now()
    })
    let second = 0
    let lastCount = 0
    instance.on('tick', () => {
      const total = Object.values(statusCodes).reduce((a, b) => a + b, 0)
      send({ type: 'progress', id, second: ++second, rps: total - lastCount })
      lastCount = total
    })
  })
}

process.on('message', (m: ToLoadGenerator) => {
  if (m.type === 'exit') return process.disconnect()
  run(m.id, m.job).then(
    (result) => send({ type: 'result', id: m.id, result }),
    (err: Error) => send({ type: 'error', id: m.id, message: err.message }),
  )
})
send({ type: 'ready' })
