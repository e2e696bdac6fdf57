import { and, isNotNull, isNull } from 'drizzle-orm'
import type { FastifyBaseLogger } from 'fastify'
import type { Db } from '../db/client.js'
import { campaigns } from '../db/schema.js'
import type { Keys } from '../redis/keys.js'
import type { RedisClient } from '../redis/client.js'
import { advance } from './store.js'
import { runDraw } from './draw.js'

const LIST_EVERY_MS = 1000
// Admissions (and as many expiries) per advance call: bounds one script's run time at a high admitPerSecond.
const MAX_PER_CALL = 5000

/**
 * Who advances admission: every API instance, every QUEUE_TICK_MS, for each queued campaign (listed from
 * PostgreSQL once a second). advance.lua is atomic and budgets admissions by the time since the last
 * advance stored in the campaign's hash, so any number of instances admit exactly admitPerSecond between
 * them; a stopped instance only means the others carry on. The draw runs once, under a lock.
 * It also flushes this instance's claim answers on queued campaigns into Redis (the drop report's counts).
 */
export function createQueueAdvancer(opts: { redis: RedisClient; db: Db; keys: Keys; log: FastifyBaseLogger
  tickMs: number }) {
  const { redis, db, keys, log } = opts
  let queued = new Map<string, string>()
  let listedAt = 0
  let timer: NodeJS.Timeout | null = null
  let running: Promise<void> | null = null
  let warnedAt = 0
  const answers = new Map<string, Map<number, number>>()

  async function list(): Promise<void> {
    const rows = await db.select({ id: campaigns.id, seed: campaigns.queueSeed }).from(campaigns)
      .where(and(isNotNull(campaigns.queueOrder), isNull(campaigns.archivedAt)))
    queued = new Map(rows.map((r) => [String(r.id), r.seed ?? '']))
    listedAt = Date.now()
  }

  async function flushAnswers(): Promise<void> {
    if (answers.size === 0) return
    // One command per counter, not one pipeline: on a cluster the campaigns' keys live in different slots,
    // and a pipeline must stay in one (a single Redis auto-pipelines these into one write anyway).
    const writes: Promise<number>[] = []
    for (const [id, byStatus] of answers) {
      for (const [status, n] of byStatus) writes.push(redis.hincrby(keys.queueAnswers(id), String(status), n))
    }
    answers.clear()
    await Promise.all(writes)
  }

  async function tick(): Promise<void> {
    if (Date.now() - listedAt >= LIST_EVERY_MS) await list()
    for (const [id, seed] of queued) {
      let r = await advance(redis, keys, id, MAX_PER_CALL)
      if (r.code === -2 && await runDraw(redis, keys, id, seed)) {
        log.info({ campaignId: id }, 'waiting room drawn')
        r = await advance(redis, keys, id, MAX_PER_CALL)
      }
      if (r.code === -1) queued.delete(id)
    }
    await flushAnswers()
  }

  function schedule(): void {
    timer = setTimeout(() => {
      running = tick().catch((err: Error) => {
        // At most one line per 10 s while a backend is down.
        if (Date.now() - warnedAt >= 10_000) {
          warnedAt = Date.now()
          log.warn({ err: { message: err.message } }, 'waiting room advance failed')
        }
      }).finally(() => { running = null; if (timer) schedule() })
    }, opts.tickMs)
  }

  return {
    start(): void { if (opts.tickMs > 0 && !timer) schedule() },
    async stop(): Promise<void> {
      if (timer) clearTimeout(timer)
      timer = null
      await running
    },
    /** A claim answer on a campaign: counted when the campaign has a waiting room (flushed each tick). */
    countClaimAnswer(id: string, status: number): void {
      if (!queued.has(id)) return
      let m = answers.get(id)
      if (!m) answers.set(id, m = new Map())
      m.set(status, (m.get(status) ?? 0) + 1)
    },
  }
}
