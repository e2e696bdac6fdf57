/**
 * Slow clients cannot hold connections: idle sockets, partial headers, headers dripped a line at a time and
 * a body that stops halfway are all closed by the server's deadlines, while other clients are served.
 */
import t from 'tap'
import net from 'node:net'
import { testEnv, startApp, http } from './helper.js'

interface Held { socket: net.Socket; closed: boolean; closedAt: number }

function open(port: number, send?: string): Promise<Held> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1')
    const h: Held = { socket, closed: false, closedAt: 0 }
    socket.on('close', () => { h.closed = true; h.closedAt = Date.now() })
    socket.on('error', () => {})
    socket.on('data', () => {}) // a 408 may come before the close
    socket.once('connect', () => { if (send) socket.write(send); resolve(h) })
    socket.once('error', reject)
  })
}

t.test('idle, partial-header, dripping and stalled-body sockets are closed; others are served meanwhile', async (t) => {
  const { config } = await testEnv(t, {
    HTTP_HEADERS_TIMEOUT_MS: '1000', HTTP_REQUEST_TIMEOUT_MS: '2000', HTTP_KEEPALIVE_TIMEOUT_MS: '1000', HTTP_IDLE_TIMEOUT_MS: '3000',
  })
  const { app, url } = await startApp(t, config)
  const port = (app.server.address() as net.AddressInfo).port
  const started = Date.now()
  const idle = await Promise.all(Array.from({ length: 50 }, () => open(port)))
  const partial = await Promise.all(Array.from({ length: 20 }, () => open(port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n')))
  const dripping = await Promise.all(Array.from({ length: 10 }, () => open(port, 'GET /healthz HTTP/1.1\r\n')))
  const drip = setInterval(() => { for (const d of dripping) if (!d.closed) d.socket.write(`X-Drip-${Date.now()}: 1\r\n`) }, 300)
  t.teardown(() => clearInterval(drip))
  const body = await open(port, 'POST /admin/campaigns HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"nam')
  // A kept-alive connection after a complete request is closed by the keep-alive timeout.
  const kept = await open(port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n')

  // Other clients are served the whole time.
  let served = 0
  let failed = 0
  while (Date.now() - started < 3500) {
    const r = await http(`${url}/healthz`)
    if (r.status === 200) served++
    else failed++
    await new Promise((r) => setTimeout(r, 100))
  }
  const all = [...idle, ...partial, ...dripping, body, kept]
  await new Promise((r) => setTimeout(r, 1500))
  clearInterval(drip)
  t.ok(served >= 3 && failed === 0, `other clients served meanwhile (${served} served, ${failed} failed)`)
  const open_ = (xs: Held[]) => xs.filter((x) => !x.closed).length
  t.equal(open_(idle), 0, 'idle sockets closed')
  t.equal(open_(partial), 0, 'partial headers closed')
  t.equal(open_(dripping), 0, 'dripping headers closed')
  t.ok(body.closed, 'stalled body closed')
  t.ok(kept.closed, 'idle keep-alive connection closed')
  t.ok(Math.max(...all.map((x) => x.closedAt)) - started < 5000, 'all within the deadlines plus a check interval')
  for (const x of all) x.socket.destroy()
})

t.test('the deadlines are checked at start-up', async (t) => {
  const { loadConfig } = await import('../src/config.js')
  t.throws(() => loadConfig({ JWT_SECRET: 'x'.repeat(32), HTTP_HEADERS_TIMEOUT_MS: '5000', HTTP_REQUEST_TIMEOUT_MS: '1000' }), /HTTP_HEADERS_TIMEOUT_MS/)
})
