import { randomUUID } from 'node:crypto'
import type postgres from 'postgres'
import t from 'tap'
import { testEnv, one } from './helper.js'

// The claims -> campaigns foreign key is gone (drizzle/0003); the guard triggers keep its promise both
// ways, including against a concurrent transaction on the other side.

const insertClaim = (q: postgres.Sql | postgres.ReservedSql, campaign: string, user: string, seq: number) =>
  q`INSERT INTO claims (claim_id, campaign_id, user_id, sequence, claimed_at) VALUES (${randomUUID()}, ${campaign}, ${user}, ${seq}, now())`

const codeOf = (p: Promise<unknown>) => p.then(() => 'ok', (err: { code?: string }) => err.code ?? String(err))

t.test('a claim needs its campaign; a campaign with claims cannot be deleted or renumbered', async (t) => {
  const { sql } = await testEnv(t)
  const { id } = one(await sql`INSERT INTO campaigns (name, stock) VALUES ('g', 10) RETURNING id`)
  const campaign = String(id)
  t.equal(await codeOf(insertClaim(sql, '987654', 'u', 1)), '23503', 'unknown campaign: foreign_key_violation')
  t.equal(await codeOf(insertClaim(sql, campaign, 'u1', 1)), 'ok')
  t.equal(await codeOf(sql`DELETE FROM campaigns WHERE id = ${campaign}`), '23503',
    'delete refused while claims reference it')
  t.equal(await codeOf(sql`UPDATE campaigns SET id = DEFAULT WHERE id = ${campaign}`), '23503', 'id change refused too')
  t.equal(await codeOf(sql`UPDATE campaigns SET stock = 20 WHERE id = ${campaign}`), 'ok', 'other updates are fine')
  t.equal(await codeOf(sql.begin('isolation level repeatable read',
    (tx) => tx`DELETE FROM campaigns WHERE id = ${campaign}`)), '0A000',
  'refused outside READ COMMITTED, where the check could miss a concurrent commit')
  const { id: empty } = one(await sql`INSERT INTO campaigns (name, stock) VALUES ('e', 10) RETURNING id`)
  t.equal(await codeOf(sql`DELETE FROM campaigns WHERE id = ${String(empty)}`), 'ok',
    'a campaign without claims can go')
  const { n } = one(await sql`SELECT count(*)::int AS n FROM claims`)
  t.equal(n, 1)
})

t.test('claim insert and campaign delete racing: whichever locks the campaign first wins, no orphan', async (t) => {
  const { sql } = await testEnv(t)
  const campaignOf = async () => String((await sql`INSERT INTO campaigns (name, stock) VALUES ('r', 10) RETURNING id`)[0]!.id)

  // Insert first (its guard holds the campaign row), delete waits and then sees the committed claim.
  const a = await campaignOf()
  const inserter = await sql.reserve()
  const deleter = await sql.reserve()
  try {
    await inserter`BEGIN`
    await insertClaim(inserter, a, 'u1', 1)
    const del = codeOf(deleter`DELETE FROM campaigns WHERE id = ${a}`)
    await waitForLockWait(sql)
    await inserter`COMMIT`
    t.equal(await del, '23503', 'the delete saw the claim committed while it waited')

    // Delete first (uncommitted), the insert's guard waits for it and then finds no campaign.
    const b = await campaignOf()
    await deleter`BEGIN`
    await deleter`DELETE FROM campaigns WHERE id = ${b}`
    const ins = codeOf(insertClaim(inserter, b, 'u1', 1))
    await waitForLockWait(sql)
    await deleter`COMMIT`
    t.equal(await ins, '23503', 'the insert found its campaign deleted')
  } finally {
    inserter.release()
    deleter.release()
  }
  const orphans = await sql`SELECT x.campaign_id FROM claims x LEFT JOIN campaigns c ON c.id = x.campaign_id WHERE c.id IS NULL`
  t.equal(orphans.length, 0, 'no claim without its campaign')
})

/** Until some backend of this database waits on a lock (the racing statement reached the conflict). */
async function waitForLockWait(sql: Awaited<ReturnType<typeof testEnv>>['sql']): Promise<void> {
  for (let i = 0; i < 500; i++) {
    const rows = await sql`SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`
    if (rows.length) return
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  throw new Error('no statement ever waited on a lock')
}
