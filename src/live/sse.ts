import type { Writable } from 'node:stream'

/**
 * Writes Server-Sent Events to one client. A client that reads slower than events come (a stalled
 * browser tab, a congested link) would otherwise make Node buffer every unsent event: when the socket
 * still has a previous event queued, the new one is skipped, since the next carries fresher numbers.
 * Memory per viewer stays at about one event.
 */
export function createSseWriter(out: Writable) {
  let sent = 0
  let skipped = 0
  return {
    /** Sends one event (data: JSON text) unless the previous one is still queued; returns whether it was written. */
    event(name: string, json: string): boolean {
      if (out.destroyed || out.writableEnded) return false
      if (out.writableNeedDrain || out.writableLength > 0) {
        skipped++
        return false
      }
      out.write(`event: ${name}\ndata: ${json}\n\n`)
      sent++
      return true
    },
    /** A comment line: keeps proxies from closing an idle connection, costs the client nothing. */
    comment(text: string) {
      if (!out.destroyed && !out.writableEnded && out.writableLength === 0) out.write(`: ${text}\n\n`)
    },
    end() {
      if (!out.destroyed && !out.writableEnded) out.end()
    },
    stats: () => ({ sent, skipped, buffered: out.writableLength }),
  }
}
