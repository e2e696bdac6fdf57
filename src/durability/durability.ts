/**
 * Durable acknowledgements (CLAIM_DURABILITY=replica): a write is answered only once its master reports it on
 * CLAIM_MIN_REPLICAS replicas, by group commit rather than a WAIT per write.
 *
 * Why one marker covers many writes: WAIT blocks until the replicas have acknowledged the replication offset
 * of the connection's own last propagated write (Redis: c->woff, set after each command that propagated;
 * 7.0 sets it after every command). A master's replication stream is one ordered stream, so the offset of a
 * marker written after a script's reply was received is above the offset of that script's effects. One
 * marker + WAIT on a connection of our own per master therefore confirms every write whose reply had arrived
 * before the marker was sent, whichever connection made it; writes arriving meanwhile wait for the next round.
 * The shared command connection is never blocked by a WAIT.
 *
 * Which master ran a write: a ticket taken right before the write names the master of the write's slot and
 * the generation of our connection to it. A confirmation counts only if the slot's master is still the same
 * when the write's reply is in (a MOVED during the write, a failover or a slots refresh make it differ) and
 * our connection did not break meanwhile (a restarted node, a new socket). Anything else: not confirmed.
 */
import type { Redis } from 'ioredis'
import type { Config } from '../config.js'
import type { Keys } from '../redis/keys.js'
import { createNodeConnection, isCluster, type RedisClient } from '../redis/client.js'

interface Log { warn(obj: object, msg: string): void; error(obj: object, msg: string): void }

/** The master a write is about to run on, as known right before it is sent. */
export interface Ticket { node: string; gen: number; partition: number; slot: number }

export interface Durability {
  readonly enabled: boolean
  /**
   * Why a write on this partition must not run now ('' when it may): its master has fewer connected
   * replicas than required, or its last confirmation failed and no probe has succeeded since.
   */
  refusal(partition: number): string
  /** Taken right before the write is sent (null: replica mode off, or no master known for the slot). */
  ticket(partition: number): Ticket | null
  /** True once everything the ticket's master had written when this is called is on enough replicas. */
  confirm(ticket: Ticket | null): Promise<boolean>
  /** Readiness: throws with the reason when some master cannot confirm writes now. */
  check(): Promise<void>
  close(): Promise<void>
}

type DurabilityConfig = Pick<Config, 'CLAIM_DURABILITY' | 'CLAIM_MIN_REPLICAS' | 'CLAIM_DURABILITY_TIMEOUT_MS' |
  'REDIS_URL' | 'REDIS_CLUSTER_NODES'>

/** How often each master's replicas are counted (INFO replication) and a failing master probed. */
const POLL_MS = 500

const OFF: Durability = {
  enabled: false, refusal: () => '', ticket: () => null, confirm: async () => true, check: async () => {},
  close: async () => {},
}

interface Waiter { partition: number; gen: number; deadline: number; resolve: (ok: boolean) => void }

/** Online replicas in an INFO replication answer (a replica still syncing cannot be promoted with our data). */
function onlineReplicas(info: string): number {
  return [...info.matchAll(/^slave\d+:.*state=online/gm)].length
}

class NodeConfirmer {
  readonly conn: Redis
  gen = 0
  /** Connected online replicas at the last poll (null: not known, refused until a poll succeeds). */
  replicas: number | null = null
  /** The node answered as a replica at the last poll, or did not answer: the slots table may be stale. */
  stale = false
  /** Why the last round did not confirm ('' after a confirmed round). */
  failing = ''
  private queue: Waiter[] = []
  private inflight = false
  readonly node: string
  private readonly c: DurabilityConfig
  private readonly keys: Keys

  // Plain fields, not parameter properties: the tests run the sources with Node's type stripping.
  constructor(node: string, conn: Redis, c: DurabilityConfig, keys: Keys) {
    this.node = node
    this.conn = conn
    this.c = c
    this.keys = keys
    // A new socket is another connection: WAIT there says nothing about writes before the break.
    conn.on('close', () => { this.gen++ })
  }

  enqueue(partition: number, gen: number): Promise<boolean> {
    return new Promise((resolve) => {
      this.queue.push({ partition, gen, deadline: Date.now() + this.c.CLAIM_DURABILITY_TIMEOUT_MS, resolve })
      this.round()
    })
  }

  /** One marker + WAIT for every waiter queued so far; the next round starts when this one ends. */
  private round(): void {
    if (this.inflight || this.queue.length === 0) return
    this.inflight = true
    const batch = this.queue.splice(0)
    const gen = this.gen
    // The queue is in arrival order: the first waiter's deadline is the nearest (WAIT 0 would block forever).
    const timeout = Math.max(1, batch[0]!.deadline - Date.now())
    const need = this.c.CLAIM_MIN_REPLICAS
    this.conn.pipeline().incr(this.keys.durabilityMarker(batch[0]!.partition)).call('WAIT', need, timeout).exec()
      .then((res) => {
        const failed = res?.find(([err]) => err)?.[0]
        if (failed) return failed.message
        const acked = Number(res![1]![1])
        return acked >= need ? '' : `${acked} of ${need} replica(s) acknowledged within ${timeout} ms`
      }, (err: Error) => err.message)
      .then((problem) => {
        if (!problem && this.gen !== gen) problem = 'connection to the master broke during the confirmation'
        this.failing = problem
        for (const w of batch) w.resolve(!problem && w.gen === gen)
      })
      .finally(() => {
        this.inflight = false
        this.round()
      })
  }

  async poll(): Promise<void> {
    try {
      const info = await this.conn.info('replication')
      const master = /^role:master/m.test(info)
      this.replicas = master ? onlineReplicas(info) : 0
      this.stale = !master
    } catch {
      this.replicas = null
      this.stale = true
    }
  }

  why(): string {
    const need = this.c.CLAIM_MIN_REPLICAS
    if (this.replicas === null) return `master ${this.node} does not answer (INFO replication)`
    if (this.stale) return `node ${this.node} is no longer a master (failover in progress)`
    if (this.replicas < need) {
      return `master ${this.node} has ${this.replicas} online replica(s), CLAIM_MIN_REPLICAS is ${need}`
    }
    if (this.failing) return `master ${this.node} did not confirm writes on ${need} replica(s): ${this.failing}`
    return ''
  }
}

/**
 * The durability of one process (API or worker). Off (CLAIM_DURABILITY=none): no connection, every write
 * counts as confirmed, nothing is refused.
 */
export function createDurability(config: DurabilityConfig, redis: RedisClient, keys: Keys, log: Log,
  name: string): Durability {
  if (config.CLAIM_DURABILITY !== 'replica') return OFF
  const confirmers = new Map<string, NodeConfirmer>()
  const cluster = isCluster(redis) ? redis : null
  const connect = (node: string) => {
    let c = confirmers.get(node)
    if (c) return c
    const i = node.lastIndexOf(':')
    const conn = createNodeConnection(config, cluster ? { host: node.slice(0, i), port: Number(node.slice(i + 1)) }
      : null, { connectionName: `${name}-durability`, log, commandTimeoutMs: config.CLAIM_DURABILITY_TIMEOUT_MS + 500 })
    c = new NodeConfirmer(node, conn, config, keys)
    confirmers.set(node, c)
    void c.poll()
    return c
  }
  /** The master of a slot now: the slots table's first entry on a cluster (MOVED updates it at once). */
  const masterOf = (slot: number): string | undefined => cluster ? cluster.slots[slot]?.[0] : 'redis'
  const slots = Array.from({ length: keys.partitions }, (_, p) => (cluster ? keys.slotOf(p) : 0))
  const slotOf = (p: number) => slots[p]!
  const currentMasters = () => cluster
    ? [...new Set(Array.from({ length: keys.partitions }, (_, p) => masterOf(slotOf(p))))]
        .filter((n) => n !== undefined)
    : ['redis']

  // Counts replicas; probes a failing master (its claims are refused meanwhile, so no claim clears it). A
  // master that is gone or demoted gets no claims either, so nothing would make the Cluster client notice:
  // its slots table is refreshed from here.
  let polling = false
  const timer = setInterval(() => {
    if (polling) return
    polling = true
    Promise.all(currentMasters().map(async (node) => {
      const c = connect(node)
      await c.poll()
      if (c.stale) cluster?.refreshSlotsCache()
      if (!c.failing) return
      const p = Array.from({ length: keys.partitions }, (_, i) => i).find((i) => masterOf(slotOf(i)) === node)
      if (p !== undefined) await c.enqueue(p, c.gen)
    })).catch((err: Error) => log.warn({ err: { message: err.message } }, 'durability poll failed'))
      .finally(() => { polling = false })
  }, POLL_MS)
  for (const node of currentMasters()) connect(node)

  return {
    enabled: true,
    refusal(p) {
      const node = masterOf(slotOf(p))
      return node === undefined ? '' : connect(node).why()
    },
    ticket(p) {
      const slot = slotOf(p)
      const node = masterOf(slot)
      return node === undefined ? null : { node, gen: connect(node).gen, partition: p, slot }
    },
    async confirm(t) {
      if (t === null || masterOf(t.slot) !== t.node) return false
      return connect(t.node).enqueue(t.partition, t.gen)
    },
    async check() {
      const problems: string[] = []
      await Promise.all(currentMasters().map(async (node) => {
        const c = connect(node)
        await c.poll()
        const why = c.why()
        if (why) problems.push(why)
      }))
      if (problems.length) throw new Error(`CLAIM_DURABILITY=replica: ${problems.join('; ')}; claims there answer 503`)
    },
    async close() {
      clearInterval(timer)
      await Promise.all([...confirmers.values()].map((c) => c.conn.quit().catch(() => c.conn.disconnect())))
    },
  }
}
