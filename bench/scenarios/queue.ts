/**
 * npm run bench -- --queue: a waiting room's opening (issue 21). N users join the pre-queue at full speed
 * (join answers/s against the bare route's ceiling), Redis memory per queued user, then the opening: the
 * draw, admission of `stock` users who claim at once, and the time until a waiting user's poll says sold out.
 */
import { createSigner } from '../tokens.js'
import { sleep } from '../processes.js'
import { fmtInt } from '../progress.js'
import { job, type Api, type Env } from '../env.js'
import { parseLog } from '../../src/queue/store.js'

export interface QueueBenchFigures {
  users: number
  stock: number
  instances: number
  joinRps: number
  ceilingRps: number | null
  joinVsCeiling: number | null
  joinStatusCodes: Record<string, number>
  /** MEMORY USAGE of the room's keys per queued user: before the draw, and with positions and the draw list. */
  bytesPerUserPreQueue: number
  bytesPerUserDrawn: number
  /** From opensAt to the last admission (the draw included), seconds. */
  openToLastAdmissionS: number | null
  /** From the last 201 to the first public poll that said sold_out, seconds. */
  lastClaimToSoldOutPollS: number | null
  issued: number
  notes: string[]
}

async function memoryOf(env: Env, keys: string[]): Promise<number> {
  let n = 0
  for (const k of keys) n += Number(await env.redis.call('MEMORY', 'USAGE', k, 'SAMPLES', '0') ?? 0)
  return n
}

export async function runQueue(env: Env, api: Api, ceilingRps: number | null): Promise<QueueBenchFigures> {
  const { users, stock } = { users: env.opts.users, stock: Math.min(env.opts.stock, env.opts.users) }
  const notes: string[] = ['one API instance takes the joins (the load generator drives one URL)']
  // Long enough for the joins at a few thousand a second on a small machine.
  const opensAt = Date.now() + 10_000 + Math.ceil(users / 2500) * 1000
  const res = await fetch(`${api.url}/admin/campaigns`, {
    method: 'POST', headers: { authorization: `Bearer ${env.adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'bench queue', stock, opensAt: new Date(opensAt).toISOString(),
      queue: { order: 'shuffle', admitPerSecond: 100_000, admitSeconds: 60 } }),
  })
  const id = String(((await res.json()) as { id: string }).id)
  env.progress.step(`queue: ${fmtInt(users)} users join the pre-queue of campaign ${id} (stock ${fmtInt(stock)})`)
  const r = await env.load.run({ ...job(env, `${api.url}/v1/campaigns/${id}/queue`, 'queue'), amount: users },
    (s, rps) => env.progress.tick('joins', s, Math.ceil(users / 3000), rps))
  env.progress.done()
  if (Date.now() >= opensAt) notes.push('the joins ran past opensAt: some joined after the opening')
  const k = env.keys
  const pre = await memoryOf(env, [k.queueUsers(id)])
  env.progress.step(`  joins: ${fmtInt(r.rps)} answers/s, ${JSON.stringify(r.statusCodes)}; ${(pre / users).toFixed(1)} B per user`)

  // The opening: admitted users (positions <= servingUpTo) claim at once, 50 at a time.
  const sign = createSigner(env.jwtSecret)
  await sleep(Math.max(0, opensAt - Date.now()))
  let claimed = 0
  let issued = 0
  let last201 = 0
  let soldOutPollAt: number | null = null
  const inflight = new Set<Promise<void>>()
  const deadline = Date.now() + 120_000
  while (Date.now() < deadline) {
    const s = (await (await fetch(`${api.url}/v1/campaigns/${id}/queue`)).json()) as { state: string; servingUpTo: number }
    if (s.state === 'sold_out' && issued >= stock) { soldOutPollAt = Date.now(); break }
    if (s.servingUpTo > claimed) {
      const positions = Array.from({ length: s.servingUpTo - claimed }, (_, i) => String(claimed + i + 1))
      claimed = s.servingUpTo
      const who = await env.redis.hmget(k.queuePositions(id), ...positions)
      for (const w of who) {
        const user = w!.slice(w!.indexOf(':') + 1)
        const p = fetch(`${api.url}/v1/campaigns/${id}/claims`, { method: 'POST',
          headers: env.opts.auth === 'jwt' ? { authorization: `Bearer ${sign(user)}` } : { [env.userHeader]: user } })
          .then(async (a) => { await a.arrayBuffer(); if (a.status === 201) { issued++; last201 = Date.now() } })
          .finally(() => inflight.delete(p))
        inflight.add(p)
        while (inflight.size >= 50) await Promise.race(inflight)
      }
    }
    await sleep(20)
  }
  await Promise.all(inflight)
  const drawn = await memoryOf(env, [k.queueUsers(id), k.queuePositions(id), k.queueDraw(id)])
  const log = parseLog(await env.redis.lrange(k.queueLog(id), 0, -1)).filter((e) => e.kind === 'admitted')
  const lastAdmission = log.length ? Math.max(...log.map((e) => e.at)) : null
  const figures: QueueBenchFigures = {
    users, stock, instances: 1, joinRps: r.rps, ceilingRps, joinVsCeiling: ceilingRps ? r.rps / ceilingRps : null,
    joinStatusCodes: r.statusCodes, bytesPerUserPreQueue: pre / users, bytesPerUserDrawn: drawn / users,
    openToLastAdmissionS: lastAdmission === null ? null : (lastAdmission - opensAt) / 1000,
    lastClaimToSoldOutPollS: soldOutPollAt === null || !last201 ? null : (soldOutPollAt - last201) / 1000,
    issued, notes: notes.filter(Boolean),
  }
  env.progress.step(`  opening: last admission ${figures.openToLastAdmissionS?.toFixed(2)} s after opensAt, ` +
    `${fmtInt(issued)} issued, sold_out polled ${figures.lastClaimToSoldOutPollS?.toFixed(2)} s after the last 201`)
  return figures
}

/** The queue figures as a small table (stdout, after the main one). */
export function renderQueue(f: QueueBenchFigures): string {
  const n = (v: number | null, d = 2) => (v === null ? 'n/a' : v.toFixed(d))
  return [
    '',
    `Waiting room (--queue): ${fmtInt(f.users)} users join the pre-queue, stock ${fmtInt(f.stock)}, ${f.instances} API instance`,
    '| figure | value | target |',
    '|---|---|---|',
    `| join answers/s | ${fmtInt(f.joinRps)} (${JSON.stringify(f.joinStatusCodes)}) | |`,
    `| join / bare-route ceiling | ${n(f.joinVsCeiling)} x (ceiling ${f.ceilingRps === null ? 'not run' : fmtInt(f.ceilingRps)}/s) | >= 0.8 x |`,
    `| Redis bytes per queued user (pre-queue / drawn) | ${n(f.bytesPerUserPreQueue, 1)} / ${n(f.bytesPerUserDrawn, 1)} | <= 100 B |`,
    `| opening to last admission | ${n(f.openToLastAdmissionS)} s | |`,
    `| last 201 to a sold_out poll | ${n(f.lastClaimToSoldOutPollS)} s | <= 2 s |`,
    `| issued | ${fmtInt(f.issued)} | = stock |`,
    ...f.notes.map((x) => `note: ${x}`),
  ].join('\n')
}
