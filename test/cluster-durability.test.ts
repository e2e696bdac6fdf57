/**
 * The failover of test/cluster-failover.test.ts with CLAIM_DURABILITY=replica (3 masters + 3 replicas,
 * cluster-node-timeout 2000 ms): claims with an Idempotency-Key flow on a campaign in every partition; the
 * victim's replica is frozen (SIGSTOP) and its link cut, 500 ms later the victim is SIGKILLed and the replica
 * thawed and promoted; the promoted master has no replica until the dead node is started again (it rejoins as
 * its replica). In replica mode nothing acknowledged is lost, so nothing needs repairing: every 201 ever
 * answered is in the promoted master's records and in PostgreSQL once, no sequence is answered twice, no
 * user answered 503 BACKEND_UNAVAILABLE holds a unit, PostgreSQL holds nothing the promoted master lacks, and
 * reconcile (report only) finds no drift. Nothing is run by hand. Two API instances and two workers, as in
 * production; the automatic recovery runs too (a promoted master's campaigns are checked against PostgreSQL:
 * 503 RECOVERING, nothing issued, while it does).
 */
import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { createKeys } from '../src/redis/keys.js'
import { parseUserRecord } from '../src/redis/users-record.js'
import { startApp, createCampaign, claim } from './helper.js'
import { clusterEnv, startCluster } from './cluster-helper.js'
import { stopProcess } from './process.js'
import { startedWorker, streamState, waitUntil } from './worker-helper.js'
import { runReconcile } from './reconcile-helper.js'

const cluster = await startCluster(t, { nodeTimeoutMs: 2000 })
const { config, env, redis, sql } = await clusterEnv(t, cluster, {
  RATE_LIMIT_IP_MAX: '0', RATE_LIMIT_USER_MAX: '0', WORKER_BLOCK_MS: '200', REDIS_COMMAND_TIMEOUT_MS: '1000',
  CLAIM_DURABILITY: 'replica', CLAIM_DURABILITY_TIMEOUT_MS: '500', RECLAIM_IDLE_MS: '2000',
  RECLAIM_INTERVAL_MS: '1000',
})
const keys = createKeys(config.KEY_PREFIX, config.STREAM_PARTITIONS)
const slotOfCampaign = (id: string) => keys.slotOf(keys.partitionOf(id))

interface Sample { id: string; user: string; start: number; end: number; status: number; code?: string
  claimId?: string; sequence?: number; message?: string }

t.test('replica mode: lagging replica, master killed, promotion: no acknowledged claim lost', async (t) => {
  const urls = [(await startApp(t, config)).url, (await startApp(t, config)).url]
  const url = urls[0]!
  const ids: string[] = []
  for (let p = 0; p < keys.partitions; p++) ids.push(await createCampaign(url, { name: `d${p}`, stock: 1_000_000 }))
  const workers = await Promise.all(['durable-1', 'durable-2'].map((name) =>
    startedWorker(t, env, name, { WORKER_COUNT: '200' }, 90_000)))
  await waitUntil('/readyz 200 (every master has its replica)', async () =>
    (await fetch(`${url}/readyz`)).status === 200)

  const topology = await cluster.topology()
  const victim = await cluster.ownerOf(slotOfCampaign(ids[0]!))
  const replica = topology.find((n) => n.masterId === victim.id)!
  const onVictim = ids.filter((id) => victim.slots.some(([a, b]) => slotOfCampaign(id) >= a && slotOfCampaign(id) <= b))

  const samples: Sample[] = []
  let stop = false
  let n = 0
  const loop = async (id: string, api: string) => {
    while (!stop) {
      const user = `u${n++}`
      const start = Date.now()
      const r = await claim(api, id, user, { 'idempotency-key': `k-${user}` })
      samples.push({ id, user, start, end: Date.now(), status: r.status, code: r.body?.code,
        claimId: r.body?.claimId, sequence: r.body?.sequence, message: r.body?.message })
      if (r.status !== 201) await sleep(20)
    }
  }
  const loops = Promise.all(ids.flatMap((id) => urls.map((api) => loop(id, api))))
  t.teardown(async () => { stop = true; await loops })
  await sleep(1500)

  const cutAt = await cluster.cutReplica(victim.port, replica.port)
  await sleep(500)
  const killedAt = Date.now()
  await cluster.signal(victim.port, 'SIGKILL')
  await cluster.signal(replica.port, 'SIGCONT')
  const promotedAt = await waitUntil('the replica took over the dead master\'s slots', async () =>
    (await cluster.ownerOf(slotOfCampaign(ids[0]!), replica.port)).port === replica.port ? Date.now() : 0, 60_000)
  // The promoted master has no replica: its claims are refused until the dead node is back as its replica.
  await sleep(1500)
  const restartedAt = Date.now()
  await cluster.restart(victim.port)
  const resumed = (id: string) => samples.find((s) => s.id === id && s.start > restartedAt && s.status === 201)
  await waitUntil('claims on every campaign of the dead master succeed again', async () => onVictim.every(resumed),
    60_000).catch((err: Error) => {
    const last = samples.filter((s) => s.status !== 201).slice(-3).map((s) => `${s.status} ${s.code} ${s.message}`)
    throw new Error(`${err.message}; last refusals: ${last.join(' | ')}`)
  })
  const resumedAt = Math.max(...onVictim.map((id) => resumed(id)!.end))
  await sleep(1000)
  stop = true
  await loops

  const codes = [...new Set(samples.map((s) => `${s.status} ${s.code ?? ''}`.trim()))].sort()
  t.same(codes.filter((c) => !['201', '503 BACKEND_UNAVAILABLE', '503 NOT_DURABLE', '503 RECOVERING'].includes(c)),
    [], `answers are 201, 503 BACKEND_UNAVAILABLE, RECOVERING or NOT_DURABLE (${codes.join(', ')})`)
  const failed = samples.filter((s) => s.status !== 201)
  t.same(failed.filter((s) => !onVictim.includes(s.id)).length, 0, 'the other masters\' campaigns were never refused')
  const window = (code: string) => {
    const f = failed.filter((s) => s.code === code)
    return f.length ? `${f.length} from ${Math.min(...f.map((s) => s.end)) - killedAt} to ` +
      `${Math.max(...f.map((s) => s.end)) - killedAt} ms` : 'none'
  }
  t.comment(`timeline (ms from the SIGKILL): replica frozen and link cut at ${cutAt - killedAt}; promoted at ` +
    `${promotedAt - killedAt}; dead node restarted at ${restartedAt - killedAt}; every campaign answering 201 ` +
    `again by ${resumedAt - killedAt}; NOT_DURABLE: ${window('NOT_DURABLE')}; ` +
    `BACKEND_UNAVAILABLE: ${window('BACKEND_UNAVAILABLE')}`)

  // Every 201 ever answered is in the promoted master's records; the records are consistent in themselves.
  const won = samples.filter((s) => s.status === 201)
  const live = new Map<string, Map<string, string>>()
  for (const id of ids) {
    const records = await redis.hgetall(keys.users(id))
    const claims = Object.entries(records)
      .flatMap(([user, r]) => parseUserRecord(r).claims.map((c) => ({ user, ...c })))
    const issued = Number(await redis.hget(keys.campaign(id), 'issued'))
    t.same(claims.map((c) => c.sequence).sort((a, b) => a - b), Array.from({ length: issued }, (_, i) => i + 1),
      `campaign ${id}: its records hold sequences 1..${issued}, each once`)
    live.set(id, new Map(claims.map((c) => [c.claimId, c.user])))
  }
  const lost = won.filter((s) => live.get(s.id)!.get(s.claimId!) !== s.user)
  t.equal(lost.length, 0, `no acknowledged claim lost (${won.length} answered 201)`)
  for (const id of ids) {
    const seqs = won.filter((s) => s.id === id).map((s) => s.sequence)
    t.equal(new Set(seqs).size, seqs.length, `campaign ${id}: no sequence answered 201 twice`)
  }
  const refused = failed.filter((s) => s.code === 'BACKEND_UNAVAILABLE' || s.code === 'RECOVERING')
  const holding = refused.filter((s) => [...live.get(s.id)!.values()].includes(s.user))
  t.equal(holding.length, 0, `no user answered BACKEND_UNAVAILABLE or RECOVERING holds a unit (${refused.length} ` +
    `such answers, ${window('RECOVERING')} RECOVERING)`)
  const unknown = failed.filter((s) => s.code === 'NOT_DURABLE')
  const kept = unknown.filter((s) => [...live.get(s.id)!.values()].includes(s.user))
  t.comment(`NOT_DURABLE: ${unknown.length} answers, ${kept.length} of those claims kept by the promoted master ` +
    `(their key replays 201), ${unknown.length - kept.length} lost (never acknowledged)`)

  await waitUntil('the worker drained every stream', async () => {
    const s = await streamState(redis, config)
    return s.length === 0 && s.pending === 0
  }, 60_000)
  for (const w of workers) t.same(await stopProcess(w), { code: 0, signal: null })
  const rows = await sql`SELECT claim_id, campaign_id, sequence FROM claims`
  const persisted = new Map<string, number>()
  for (const r of rows) persisted.set(r.claim_id as string, (persisted.get(r.claim_id as string) ?? 0) + 1)
  t.ok(won.every((s) => persisted.get(s.claimId!) === 1), 'every 201 is in PostgreSQL exactly once')
  t.equal(rows.filter((r) => !live.get(String(r.campaign_id))?.has(r.claim_id as string)).length, 0,
    'PostgreSQL holds no claim the promoted master lacks')
  const [dead] = await sql`SELECT count(*)::int AS n FROM failed_claims`
  t.equal(dead!.n, 0, 'no dead letters')

  const report = await runReconcile(env, ['--json'])
  t.equal(report.code, 0, `reconcile (report only) finds nothing to fix${report.code ? `: ${report.stdout.slice(0, 2000)}` : ''}`)
})
