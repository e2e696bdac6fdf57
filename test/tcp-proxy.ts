/**
 * A TCP proxy on loopback in front of a backend (PostgreSQL or Redis) that a test can misbehave with:
 * pass (forward both ways), blackHole (accept bytes, forward nothing), withholdReplies then release (forward
 * requests, keep the backend's replies until released), cut (close every connection), refuse (stop
 * listening) and listen (again, on the same port).
 */
import net from 'node:net'
import { once } from 'node:events'

interface Tap { teardown(fn: () => unknown): void }

export async function trafficProxy(t: Tap, targetPort: number) {
  const clients = new Set<net.Socket>()
  let hole = false
  let withholding = false
  const held: (() => void)[] = []
  let server: net.Server | null = null
  let port = 0
  const listen = async () => {
    server = net.createServer((c) => {
      const up = net.connect(targetPort, '127.0.0.1')
      clients.add(c)
      c.on('data', (d) => { if (!hole) up.write(d) })
      up.on('data', (d) => {
        if (hole) return
        if (withholding) held.push(() => c.write(d))
        else c.write(d)
      })
      c.on('error', () => {})
      up.on('error', () => {})
      c.on('close', () => { up.destroy(); clients.delete(c) })
      up.on('close', () => c.destroy())
    })
    server.listen(port, '127.0.0.1')
    await once(server, 'listening')
    port = (server.address() as net.AddressInfo).port
  }
  const refuse = async () => {
    const s = server
    server = null
    for (const c of clients) c.destroy()
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()))
  }
  await listen()
  t.teardown(refuse)
  return {
    port,
    blackHole: () => { hole = true },
    pass: () => { hole = false },
    withholdReplies: () => { withholding = true },
    /** Delivers the replies kept since withholdReplies, in order, and forwards again. */
    release: () => {
      withholding = false
      for (const deliver of held.splice(0)) deliver()
    },
    cut: () => { for (const c of clients) c.destroy() },
    refuse,
    listen,
  }
}
