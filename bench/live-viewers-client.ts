/**
 * The viewers of `npm run bench:live`, in a process of their own so that reading 100 feeds is not charged
 * to the load generator. Driven over IPC: 'open' -> 'opened' once every feed answered, 'close' -> the
 * number of snapshots received.
 */
type Msg = { type: 'open'; url: string; id: string; token: string; viewers: number } | { type: 'close' }

let controllers: AbortController[] = []
let done: Promise<void>[] = []
let events = 0

process.on('message', async (m: Msg) => {
  if (m.type === 'open') {
    events = 0
    controllers = Array.from({ length: m.viewers }, () => new AbortController())
    const answered: Promise<void>[] = []
    done = controllers.map((c, i) => new Promise<void>((resolveDone) => {
      answered[i] = (async () => {
        const res = await fetch(`${m.url}/admin/campaigns/${m.id}/live`, { headers: { authorization: `Bearer ${m.token}` }, signal: c.signal })
        if (res.status !== 200 || !res.body) throw new Error(`viewer: HTTP ${res.status}`)
        void (async () => {
          try {
            for await (const chunk of res.body!) events += (Buffer.from(chunk as Uint8Array).toString().match(/^event: snapshot$/gm) ?? []).length
          } catch { /* aborted */ }
          resolveDone()
        })()
      })()
    }))
    try {
      await Promise.all(answered)
      process.send!({ type: 'opened' })
    } catch (err) {
      process.send!({ type: 'error', message: (err as Error).message })
    }
  } else if (m.type === 'close') {
    for (const c of controllers) c.abort()
    await Promise.all(done)
    process.send!({ type: 'closed', events })
  }
})
process.on('disconnect', () => process.exit(0))
