import { createHash } from 'node:crypto'
import { eq } from 'drizzle-orm'
import type { Db } from '../db/client.js'
import { adminIdempotencyKeys } from '../db/schema.js'
import { AppError, ErrorCode } from '../errors.js'
import type { Tx } from './repository.js'

export interface StoredAnswer {
  statusCode: number
  body: Record<string, unknown>
  campaignId: string
  /** The Redis mirror succeeded once for this key. */
  mirrored: boolean
}

/** A canonical fingerprint of the request: the same key with another route or body is a client bug. */
function requestHash(route: string, body: unknown): string {
  const canon = (v: unknown): unknown => (v && typeof v === 'object' && !Array.isArray(v)
    ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, canon((v as Record<string, unknown>)[k])]))
    : v)
  return createHash('sha256').update(route).update('\n').update(JSON.stringify(canon(body ?? null))).digest('hex')
}

class KeyTaken extends Error {}

/**
 * Idempotency-Key for the admin writes. The write and its answer commit in one transaction, so after any
 * failure (a lost answer, a 503 from the Redis mirror, a crash) a retry with the same key finds the answer
 * and never writes twice. Two concurrent requests with one key: the second waits on the key's primary key
 * until the first commits, rolls its own write back and replays the first's answer.
 */
export function createAdminIdempotency(db: Db) {
  async function stored(key: string, route: string, hash: string): Promise<StoredAnswer | null> {
    const [row] = await db.select().from(adminIdempotencyKeys).where(eq(adminIdempotencyKeys.key, key))
    if (!row) return null
    if (row.route !== route || row.requestHash !== hash) {
      throw new AppError(422, ErrorCode.IDEMPOTENCY_KEY_REUSED,
        'this Idempotency-Key was used for a different request; use a new key')
    }
    return { statusCode: row.statusCode, body: row.response as Record<string, unknown>,
      campaignId: String(row.campaignId), mirrored: row.mirroredAt !== null }
  }

  return {
    /**
     * Runs `write` inside a transaction that also stores its answer under `key`; when the key is known,
     * returns the stored answer instead (replayed) and writes nothing.
     */
    async once(key: string, route: string, body: unknown,
      write: (tx: Tx) => Promise<{ statusCode: number; body: Record<string, unknown>; campaignId: bigint }>,
    ): Promise<{ answer: StoredAnswer; replayed: boolean }> {
      const hash = requestHash(route, body)
      const earlier = await stored(key, route, hash)
      if (earlier) return { answer: earlier, replayed: true }
      try {
        const answer = await db.transaction(async (tx) => {
          const a = await write(tx)
          const inserted = await tx.insert(adminIdempotencyKeys)
            .values({ key, route, requestHash: hash, campaignId: a.campaignId, statusCode: a.statusCode,
              response: a.body })
            .onConflictDoNothing()
            .returning({ key: adminIdempotencyKeys.key })
          if (inserted.length === 0) throw new KeyTaken() // a concurrent request with this key committed first
          return { statusCode: a.statusCode, body: a.body, campaignId: String(a.campaignId), mirrored: false }
        })
        return { answer, replayed: false }
      } catch (err) {
        if (!(err instanceof KeyTaken)) throw err
        const winner = await stored(key, route, hash)
        if (!winner) throw new Error('idempotency key vanished after a conflict', { cause: err })
        return { answer: winner, replayed: true }
      }
    },

    /** Records that the Redis mirror of this key's write succeeded (best effort: a replay re-mirrors anyway). */
    async markMirrored(key: string): Promise<void> {
      await db.update(adminIdempotencyKeys).set({ mirroredAt: new Date() }).where(eq(adminIdempotencyKeys.key, key))
    },
  }
}
