/**
 * The open-loop load generator (bench/open-loop.ts drives it over IPC): requests leave on a fixed schedule,
 * one every 1/rate seconds whether or not earlier ones were answered, and each latency is counted from the
 * request's intended send time. A closed-loop client (autocannon, wrk) waits for an answer before sending the
 * next request, so a stall delays the requests behind it and they are never measured (coordinated omission);
 * here a stall shows up in every request that should have left during it.
 */
import http from 'node:http'
import * as hdr from 'hdr-histogram-js'
import { createSigner } from './tokens.js'
import type { OpenLoopJob, OpenLoopResult } from './scenarios/open-loop.js'

function run(job: OpenLoopJob): Promise<OpenLoopResult> {
  const hist = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000,
    numberOfSignificantValueDigits: 3 })
  const url = new URL(job.url)
  // Enough sockets that the client is never the queue; a request waiting for one still counts from its slot.
  const agent = new http.Agent({ keepAlive: true, maxSockets: job.maxConnections })
  const sign = job.auth.kind === 'jwt' ? createSigner(job.auth.secret) : null
  // The warm-up's slots come first, on the same schedule and sockets, and are not recorded: the measured
  // seconds start with connections open and code compiled, as the closed-loop scenarios' warm-up does.
  const warmup = Math.round(job.rate * job.warmupSeconds)
  const measured = Math.max(1, Math.round(job.rate * job.seconds))
  const total = warmup + measured
  const intervalNs = 1e9 / job.rate
  const statusCodes: Record<string, number> = {}
  let sent = 0
  let sentMeasured = 0
  let answered = 0
  let errors = 0
  let within50 = 0
  // Every request's credential is made before the clock starts: signing inside the schedule would put the
  // generator's own HMAC and garbage into the latencies it measures (a new user per request all the same).
  const credentialHeader = sign ? 'authorization' : job.auth.kind === 'header' ? job.auth.header : ''
  const credentials = Array.from({ length: total }, (_, i) =>
    (sign ? `Bearer ${sign(`${job.userPrefix}${i}`)}` : `${job.userPrefix}${i}`))
  const start = process.hrtime.bigint()
  const elapsedUs = (intendedNs: number) =>
    Math.max(1, Math.round((Number(process.hrtime.bigint() - start) - intendedNs) / 1000))

  return new Promise((resolve) => {
    let finished = false
    const finish = () => {
      if (finished) return
      finished = true
      clearTimeout(giveUp)
      agent.destroy()
      const at = (p: number) => hist.getValueAtPercentile(p) / 1000
      resolve({
        rate: job.rate, sent: sentMeasured, warmupRequests: warmup, answered, errors, statusCodes,
        seconds: Number(process.hrtime.bigint() - start) / 1e9 - job.warmupSeconds,
        p50Ms: at(50), p99Ms: at(99), p999Ms: at(99.9), maxMs: hist.maxValue / 1000,
        // Of every request scheduled: one never answered was not answered within 50 ms either.
        within50MsPct: (within50 / measured) * 100,
      })
      hist.destroy()
    }
    // Whatever is still unanswered this long after the last slot is recorded as that late and counted an error.
    const pending = new Map<number, http.ClientRequest>()
    let giveUp: NodeJS.Timeout | undefined
    const settle = (i: number, intendedNs: number, status: number | null) => {
      if (!pending.delete(i) || finished) return
      if (i < warmup) {
        if (sent === total && pending.size === 0) finish()
        return
      }
      const us = elapsedUs(intendedNs)
      hist.recordValue(us)
      if (status === null) errors++
      else {
        answered++
        statusCodes[status] = (statusCodes[status] ?? 0) + 1
        if (us <= 50_000) within50++
      }
      if (sent === total && pending.size === 0) finish()
    }
    const send = (i: number) => {
      const intendedNs = i * intervalNs
      const headers: Record<string, string> = { [credentialHeader]: credentials[i]! }
      const req = http.request({ agent, host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers },
        (res) => {
          res.resume()
          res.on('end', () => settle(i, intendedNs, res.statusCode ?? 0))
        })
      req.on('error', () => settle(i, intendedNs, null))
      pending.set(i, req)
      req.end()
      sent++
      if (i >= warmup) sentMeasured++
    }
    // Every tick (about 1 ms apart: Node's timer granularity) sends each request whose slot has come; their
    // latency counts from their slots, so the batching is charged to the answer, never hidden. A busy loop
    // would be finer but would take a core from the server on a 2-core machine.
    const tick = () => {
      const due = Math.min(total, Math.floor(Number(process.hrtime.bigint() - start) / intervalNs) + 1)
      while (sent < due) send(sent)
      if (sent < total) {
        const nextNs = sent * intervalNs - Number(process.hrtime.bigint() - start)
        setTimeout(tick, Math.max(1, Math.floor(nextNs / 1e6)))
      } else {
        giveUp = setTimeout(() => {
          for (const [i, req] of pending) {
            req.destroy()
            settle(i, i * intervalNs, null)
          }
          finish()
        }, job.drainTimeoutMs)
        if (pending.size === 0) finish()
      }
    }
    tick()
  })
}

process.on('message', (m: { type: 'run'; job: OpenLoopJob } | { type: 'exit' }) => {
  if (m.type === 'exit') return process.disconnect()
  run(m.job).then(
    (result) => process.send!({ type: 'result', result }),
    (err: Error) => process.send!({ type: 'error', message: err.message }),
  )
})
process.send!({ type: 'ready' })
