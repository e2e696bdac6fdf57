/**
 * Recovery time of a fenced campaign (issue 19): N claims persisted in PostgreSQL (seeded in bulk,
 * bench/reconcile-seed.ts), then Redis loses the campaign. Two losses, one after the other:
 *  - empty: its hash and users hash are deleted, as after a restart with nothing on disk (rebuilt from
 *    PostgreSQL: every user's record restored);
 *  - stale: its hash says another Redis process verified it, as after a failover or a restart from disk
 *    (checked against PostgreSQL, nothing to repair).
 * An API instance with the recoverer (its defaults) is running; one client claims as new users, one request
 * at a time, from the loss until the first 201. fencedMs is the loss to that 201; repairMs the repair as the
 * recoverer recorded it (recoveries: started_at to finished_at).
 */
import { createSigner } from '../tokens.js'
import { sleep } from '../processes.js'
import { seedCampaign } from '../reconcile-seed.js'
import { fmtInt } from '../progress.js'
import { startServer, type Api, type Env } from '../env.js'

export interface RecoveryFigures {
  claims: number
  loss: 'empty' | 'stale'
  /** From the loss to the first claim answered 201 (the fence lifted, seen by a client). */
  fencedMs: number
  /** The repair's own duration, as recorded in `recoveries`. */
  repairMs: number
  /** 'rebuilt' or 'checked' (recoveries.reason). */
  reason: string
  /** 503 RECOVERING answers the client got meanwhile (each followed by a 10 ms pause). */
  recovering: number
  /** The sequence of the first 201: past every one PostgreSQL holds (checked). */
  resumedAt: number
  seedMs: number
}

export async function runRecovery(env: Env): Promise<RecoveryFigures[]> {
  env.progress.step(`recovery: a fenced campaign repaired from PostgreSQL (${env.opts.recoveryClaims.map(fmtInt).join(', ')} claims)`)
  let api: Api | null = null
  const sign = createSigner(env.jwtSecret)
  let n = 0
  const claim = async (id: string) => {
    const user = `${env.runId}-recovery-${n++}`
    const headers: Record<string, string> = env.opts.auth === 'jwt'
      ? { authorization: `Bearer ${sign(user)}` } : { [env.userHeader]: user }
    const res = await fetch(`${api!.url}/v1/campaigns/${id}/claims`, { method: 'POST', headers })
    return { status: res.status, body: await res.json() as { code?: string; sequence?: number } }
  }
  const out: RecoveryFigures[] = []
  let idOffset = 0
  try {
    for (const claims of env.opts.recoveryClaims) {
      const t0 = Date.now()
      // Stock above the claims, so the campaign issues again once repaired.
      const id = await seedCampaign(env.redis, env.sql, env.keys, { claims, stock: claims + 1_000, idOffset })
      idOffset += claims
      await env.sql`ANALYZE claims`
      const seedMs = Date.now() - t0
      env.progress.step(`  recovery: seeded ${fmtInt(claims)} claims in ${(seedMs / 1000).toFixed(1)} s`)
      // Started after the seeding: its sweep would rightly rebuild a campaign row left without live state
      // for longer than its grace period, and the seeding writes the rows before the hash.
      api = await startServer(env, `api-recovery-${claims}`, 'src/server')
      const first = await claim(id)
      if (first.status !== 201) throw new Error(`recovery set-up: the seeded campaign answered ${first.status} ${first.body.code}`)
      let lastRecovery = '0'
      for (const loss of ['empty', 'stale'] as const) {
        const lostAt = Date.now()
        if (loss === 'empty') await env.redis.unlink(env.keys.campaign(id), env.keys.users(id))
        else await env.redis.hset(env.keys.campaign(id), 'node', 'another-redis-process')
        let recovering = 0
        let won: { sequence?: number } | null = null
        let fencedMs = 0
        while (!won) {
          const r = await claim(id)
          if (r.status === 201) { won = r.body; fencedMs = Date.now() - lostAt; break }
          if (r.status !== 503 || r.body.code !== 'RECOVERING') throw new Error(`recovery (${loss}): a claim answered ${r.status} ${r.body.code}`)
          recovering++
          if (Date.now() - lostAt > 600_000) throw new Error(`recovery (${loss}): still fenced after 10 minutes`)
          await sleep(10)
        }
        if (recovering === 0) throw new Error(`recovery (${loss}): the first claim after the loss was not fenced`)
        if (!(won.sequence! > claims)) throw new Error(`recovery (${loss}): issued sequence ${won.sequence} again (PostgreSQL holds 1..${claims})`)
        // The row is written just after the fence is lifted, so it may follow the first 201 by a moment.
        let rec: { id: string; reason: string; ms: number } | undefined
        for (let i = 0; !rec && i < 200; i++) {
          if (i) await sleep(50)
          rec = (await env.sql<{ id: string; reason: string; ms: number }[]>`
            SELECT id::text, reason, (extract(epoch FROM finished_at - started_at) * 1000)::int AS ms FROM recoveries
            WHERE campaign_id = ${id} AND id > ${lastRecovery} AND started_at >= ${new Date(lostAt)}
            ORDER BY id LIMIT 1`)[0]
        }
        if (!rec) throw new Error(`recovery (${loss}): no row in recoveries 10 s after the first 201`)
        lastRecovery = rec.id
        out.push({ claims, loss, fencedMs, repairMs: rec.ms, reason: rec.reason, recovering, resumedAt: won.sequence!,
          seedMs })
        env.progress.step(`  recovery, ${fmtInt(claims)} claims, ${loss}: fenced ${fmtInt(fencedMs)} ms, repair ` +
          `${fmtInt(rec.ms)} ms (${rec.reason}), ${recovering} x 503 RECOVERING, resumed at sequence ${won.sequence}`)
      }
      await api.proc.stop()
      api = null
    }
  } finally {
    await api?.proc.stop()
  }
  return out
}
