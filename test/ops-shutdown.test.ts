/**
 * Graceful shutdown of the real entry point (src/server.ts in a child process): in-flight requests finish,
 * requests arriving on open connections get 503 SHUTTING_DOWN, a second signal or the grace timeout exits 1.
 * Also checks what the production logs contain (user ids on claims) and what they never contain (secrets).
 */
import t from 'tap'
import net from 'node:net'
import { once } from 'node:events'
import type { ChildProcess } from 'node:child_process'
import { createKeys } from '../src/redis/keys.js'
import { testEnv, spawnServer, freePort, createCampaign, userToken, ADMIN_TOKEN, JWT_SECRET,
  countBy } from './helper.js'

const METRICS_TOKEN = 'metrics-token-0123456789'

/** Everything the child writes, from now on, with a wait for a pattern. */
function collect(child: ChildProcess) {
  let buf = ''
  const waiters: { re: RegExp; resolve: () => void }[] = []
  const onData = (d: Buffer) => {
    buf += d.toString()
    for (const w of [...waiters]) if (w.re.test(buf)) { waiters.splice(waiters.indexOf(w), 1); w.resolve() }
  }
  child.stdout!.on('data', onData)
  child.stderr!.on('data', onData)
  return {
    text: () => buf,
    until: (re: RegExp, ms = 15_000) => new Promise<void>((resolve, reject) => {
      if (re.test(buf)) return resolve()
      const timer = setTimeout(() => reject(new Error(`no ${re} in output:\n${buf}`)), ms)
      waiters.push({ re, resolve: () => { clearTimeout(timer); resolve() } })
    }),
  }
}

function exitOf(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode,
    signal: child.signalCode })
  return once(child, 'exit').then(([code, signal]) => ({ code, signal }))
}

const claimHead = (id: string, user: string, contentLength: number) =>
  `POST /v1/campaigns/${id}/claims HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer ${userToken(user)}\r\n` +
  `Content-Type: application/json\r\nContent-Length: ${contentLength}\r\n\r\n`

/** Splits raw HTTP/1.1 responses (Content-Length bodies) into status, headers and parsed body. */
function parseResponses(raw: string) {
  const out: { status: number; headers: Record<string, string>; body: any }[] = []
  let rest = raw
  while (rest.length > 0) {
    const end = rest.indexOf('\r\n\r\n')
    if (end < 0) break
    const [statusLine, ...lines] = rest.slice(0, end).split('\r\n')
    const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(),
      l.slice(l.indexOf(':') + 1).trim()]))
    const len = Number(headers['content-length'] ?? 0)
    out.push({ status: Number(statusLine!.split(' ')[1]), headers,
      body: JSON.parse(rest.slice(end + 4, end + 4 + len)) })
    rest = rest.slice(end + 4 + len)
  }
  return out
}

async function setup(t: { teardown(fn: () => unknown): void }, grace: number, stock: number) {
  const { env, redis, config } = await testEnv(t, {
    RATE_LIMIT_IP_MAX: '0', RATE_LIMIT_USER_MAX: '0', SHUTDOWN_GRACE_MS: String(grace), METRICS_TOKEN,
    // debug: the "incoming request" line tells the test a request is in flight.
    LOG_LEVEL: 'debug',
  })
  const port = await freePort()
  const { child, url } = await spawnServer(t, env, port)
  const out = collect(child)
  const id = await createCampaign(url, { name: 'shutdown', stock })
  const k = createKeys(config.KEY_PREFIX, config.STREAM_PARTITIONS)
  const keys = { campaign: k.campaign(id), stream: k.streamOf(id) }
  return { child, url, port, out, id, redis, keys }
}

t.test('SIGTERM: the in-flight claim finishes, the next request on its connection gets 503 SHUTTING_DOWN, exit 0', async (t) => {
  const { child, port, out, id, redis, keys } = await setup(t, 8000, 10)
  const sock = net.connect(port, '127.0.0.1')
  await once(sock, 'connect')
  let raw = ''
  sock.on('data', (d) => { raw += d.toString() })
  // Headers only: the request is in flight (the server waits for its body) when the signal arrives.
  sock.write(claimHead(id, 'held', 2))
  await out.until(/"url":"\/v1\/campaigns\/\d+\/claims"[^\n]*"msg":"incoming request"/)
  child.kill('SIGTERM')
  await out.until(/"msg":"shutting down"/)
  // Its body, and a second request pipelined on the same connection after the server began closing.
  sock.write('{}' + claimHead(id, 'late', 0))
  await once(sock, 'close')
  const [first, second, ...more] = parseResponses(raw)
  t.equal(first?.status, 201, 'the in-flight claim completes')
  t.equal(first?.body.userId, 'held')
  t.equal(second?.status, 503)
  t.same(second?.body, { statusCode: 503, code: 'SHUTTING_DOWN', error: 'Service Unavailable',
    message: second?.body.message })
  t.equal(second?.headers.connection, 'close')
  t.same(more, [])
  t.same(await exitOf(child), { code: 0, signal: null }, 'exit 0 within the grace time')
  t.equal(await redis.hget(keys.campaign, 'issued'), '1', 'only the in-flight claim was issued')
  t.equal(await redis.xlen(keys.stream), 1)
  t.match(out.text(), /"msg":"closed"/)
})

t.test('SIGTERM during a burst: every answer is correct, exit 0, counter == stream', async (t) => {
  const stock = 250
  const total = 600
  const { child, url, out, id, redis, keys } = await setup(t, 8000, stock)
  const tokens = Array.from({ length: total }, (_, i) => userToken(`burst-${i}`))
  type Result = { status: number; body: any } | { error: string }
  const results: Result[] = []
  let next = 0
  let signalled = false
  // 40 concurrent clients; the signal goes out once 200 requests have been answered.
  const workers = Array.from({ length: 40 }, async () => {
    while (next < total) {
      const i = next++
      try {
        const res = await fetch(`${url}/v1/campaigns/${id}/claims`,
          { method: 'POST', headers: { authorization: `Bearer ${tokens[i]}` } })
        results.push({ status: res.status, body: await res.json() })
      } catch (err) {
        results.push({ error: String((err as { cause?: { code?: string } }).cause?.code ?? err) })
      }
      if (!signalled && results.length >= 200) {
        signalled = true
        child.kill('SIGTERM')
      }
    }
  })
  await Promise.all(workers)
  const exit = await exitOf(child)
  t.same(exit, { code: 0, signal: null }, 'exit 0 within the grace time')
  t.equal(results.length, total)

  const answered = results.filter((r): r is { status: number; body: any } => 'status' in r)
  const refused = results.filter((r): r is { error: string } => 'error' in r)
  t.comment(`answers by status ${JSON.stringify(countBy(answered, (r) => r.status))}; no answer ${JSON.stringify(countBy(refused, (r) => r.error))}`)
  const wrong = answered.filter((r) => !(
    (r.status === 201 && Number.isInteger(r.body.sequence)) ||
    (r.status === 410 && r.body.code === 'SOLD_OUT') ||
    (r.status === 503 && r.body.code === 'SHUTTING_DOWN')))
  t.same(wrong, [], 'every answer is 201, 410 SOLD_OUT or 503 SHUTTING_DOWN')
  t.ok(answered.length >= 200, 'the burst was answered until the signal')
  // Requests with no answer never reached a handler: refused connections or sockets closed as idle.
  t.same(refused.filter((r) => !/ECONNREFUSED|ECONNRESET|UND_ERR_SOCKET|EPIPE/.test(r.error)), [],
    'no answer only as a connection-level refusal')

  const created = answered.filter((r) => r.status === 201)
  const sequences = created.map((r) => r.body.sequence).sort((a, b) => a - b)
  t.same(sequences, Array.from({ length: created.length }, (_, i) => i + 1), 'sequences 1..n, each once')
  t.ok(created.length <= stock)
  t.equal(Number(await redis.hget(keys.campaign, 'issued')), created.length, 'Redis issued == 201 answers')
  t.equal(await redis.xlen(keys.stream), created.length, 'stream entries == 201 answers')
  t.equal(await redis.hlen(`${keys.campaign}:users`), created.length)

  // Production logs: JSON lines, the user id on claim lines, request ids; never a token or secret.
  const lines = out.text().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l))
  const claimLines = lines.filter((l) => l.msg === 'request completed' && l.outcome !== undefined)
  t.equal(claimLines.filter((l) => l.outcome === 'issued').length, created.length,
    'one completion line per issued claim')
  t.ok(claimLines.every((l) => /^burst-\d+$/.test(l.userId) && l.campaignId === id && l.reqId && l.statusCode),
    'claim lines carry userId, campaignId, status and reqId')
  const text = out.text()
  for (const secret of [JWT_SECRET, ADMIN_TOKEN, METRICS_TOKEN, tokens[0]!, 'Bearer']) t.notOk(text.includes(secret),
    `logs never contain ${secret.slice(0, 12)}...`)
})

t.test('a second signal exits at once with code 1', async (t) => {
  const { child, port, out, id } = await setup(t, 30_000, 10)
  const sock = net.connect(port, '127.0.0.1')
  t.teardown(() => sock.destroy())
  sock.on('error', () => {})
  await once(sock, 'connect')
  sock.write(claimHead(id, 'held', 2)) // never completed: keeps the server from closing
  await out.until(/"url":"\/v1\/campaigns\/\d+\/claims"[^\n]*"msg":"incoming request"/)
  child.kill('SIGTERM')
  await out.until(/"msg":"shutting down"/)
  child.kill('SIGTERM')
  t.same(await exitOf(child), { code: 1, signal: null })
  t.match(out.text(), /second SIGTERM, exiting/)
})

t.test('the grace timeout exits with code 1', async (t) => {
  const { child, port, out, id } = await setup(t, 1500, 10)
  const sock = net.connect(port, '127.0.0.1')
  t.teardown(() => sock.destroy())
  sock.on('error', () => {})
  await once(sock, 'connect')
  sock.write(claimHead(id, 'held', 2))
  await out.until(/"url":"\/v1\/campaigns\/\d+\/claims"[^\n]*"msg":"incoming request"/)
  child.kill('SIGTERM')
  t.same(await exitOf(child), { code: 1, signal: null })
  t.match(out.text(), /killed by timeout \(1500ms\)/)
})
