/**
 * Seeds a campaign straight into Redis and PostgreSQL in bulk (no HTTP, no worker), in the exact shapes
 * claim.lua and the worker write, so reconcile can be measured and tested at 10^5..10^6 claims.
 * Claim ids are derived from the sequence so both sides agree without holding anything in memory.
 */
import type { Redis } from 'ioredis'
import type postgres from 'postgres'
import type { Keys } from '../src/redis/keys.js'
import { defineScripts } from '../src/redis/scripts.js'
import { writeLiveState } from '../src/reconcile/live-state.js'
import { encodeUserRecord } from '../src/redis/users-record.js'

export const claimIdOf = (seq: number) => `00000000-0000-4000-8000-${seq.toString(16).padStart(12, '0')}`
export const userOf = (seq: number) => `user-${seq}`
const BASE_MS = 1_700_000_000_000

export interface SeedOptions {
  claims: number
  /** Added to each sequence in its claim id, so several seeded campaigns can share a database (default 0). */
  idOffset?: number
  /** The campaign's stock (default: claims, sold out). */
  stock?: number
  /** Sequences left out of the claims table (with no stream entry either: LOST). */
  notPersisted?: number[]
  /** Sequences left out of the users hash (Redis lost data). */
  notInRedis?: number[]
}

/** Creates the campaign row and its live state; returns the campaign id. */
export async function seedCampaign(redis: Redis, sql: postgres.Sql, keys: Keys, o: SeedOptions): Promise<string> {
  const stock = o.stock ?? o.claims
  const off = o.idOffset ?? 0
  const [row] = await sql<{ id: bigint }[]>`INSERT INTO campaigns (name, stock, per_user_limit) VALUES ('seeded', ${stock}, 1) RETURNING id`
  const id = String(row!.id)
  const skipRow = new Set(o.notPersisted ?? [])
  const skipRedis = new Set(o.notInRedis ?? [])

  // Database: one INSERT ... SELECT per million; the skipped sequences are removed afterwards.
  await sql`
    INSERT INTO claims (claim_id, campaign_id, user_id, sequence, claimed_at)
    SELECT ('00000000-0000-4000-8000-' || lpad(to_hex(s + ${off}::bigint), 12, '0'))::uuid, ${id}, 'user-' || s, s,
           to_timestamp((${BASE_MS}::bigint + s) / 1000.0)
    FROM generate_series(1, ${o.claims}::int) AS s`
  if (skipRow.size) await sql`DELETE FROM claims WHERE campaign_id = ${id} AND sequence = ANY(${[...skipRow]}::int[])`

  // Redis: the live hash as reconcile rebuilds it, and the users hash in pipelined chunks.
  defineScripts(redis)
  await writeLiveState(redis, keys, { id, name: 'seeded', stock, perUserLimit: 1, opensAt: null,
    closesAt: null }, o.claims, true)
  const CHUNK = 1000
  let pipe = redis.pipeline()
  let queued = 0
  for (let from = 1; from <= o.claims; from += CHUNK) {
    const args: string[] = []
    for (let s = from; s < from + CHUNK && s <= o.claims; s++) {
      const claim = { sequence: s, claimId: claimIdOf(s + off), claimedAt: BASE_MS + s }
      if (!skipRedis.has(s)) args.push(userOf(s), encodeUserRecord([claim]))
    }
    if (args.length) { pipe.hset(keys.users(id), ...args); queued++ }
    if (queued >= 20) { await pipe.exec(); pipe = redis.pipeline(); queued = 0 }
  }
  if (queued) await pipe.exec()
  return id
}
