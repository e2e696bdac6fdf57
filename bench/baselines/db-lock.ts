/**
 * Baseline (a): the database pessimistic lock, the first article's starting point. Every claim takes the
 * campaign's stock row FOR UPDATE, checks the user and the stock, inserts the claim and commits, so
 * claims of one campaign run one at a time, each holding the lock for a few database round trips.
 */
import type postgres from 'postgres'
import type { BaselineOutcome } from './outcome.js'

export async function createDbLockTables(sql: postgres.Sql): Promise<void> {
  await sql`CREATE TABLE IF NOT EXISTS bench_stock (id bigserial PRIMARY KEY, stock integer NOT NULL, issued integer NOT NULL DEFAULT 0)`
  await sql`CREATE TABLE IF NOT EXISTS bench_claims (
    id bigserial PRIMARY KEY, stock_id bigint NOT NULL REFERENCES bench_stock(id), user_id text NOT NULL,
    sequence integer NOT NULL, claimed_at timestamptz NOT NULL DEFAULT now())`
  await sql`CREATE INDEX IF NOT EXISTS bench_claims_user_idx ON bench_claims (stock_id, user_id)`
}

export async function createDbLockCampaign(sql: postgres.Sql, stock: number): Promise<string> {
  const [row] = await sql<{ id: string }[]>`INSERT INTO bench_stock (stock) VALUES (${stock}) RETURNING id::text AS id`
  return row!.id
}

export async function dbLockClaim(sql: postgres.Sql, id: string, userId: string): Promise<BaselineOutcome> {
  return sql.begin(async (tx) => {
    const [row] = await tx<{ stock: number; issued: number }[]>`SELECT stock, issued FROM bench_stock WHERE id = ${id} FOR UPDATE`
    if (!row) return { kind: 'not_found' } as const
    const [dup] = await tx`SELECT 1 FROM bench_claims WHERE stock_id = ${id} AND user_id = ${userId} LIMIT 1`
    if (dup) return { kind: 'at_limit' } as const
    if (row.issued >= row.stock) return { kind: 'sold_out' } as const
    const sequence = row.issued + 1
    await tx`UPDATE bench_stock SET issued = ${sequence} WHERE id = ${id}`
    await tx`INSERT INTO bench_claims (stock_id, user_id, sequence) VALUES (${id}, ${userId}, ${sequence})`
    return { kind: 'issued', sequence } as const
  })
}
