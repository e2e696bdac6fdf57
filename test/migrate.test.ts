import t from 'tap'
import { randomBytes } from 'node:crypto'
import postgres from 'postgres'
import { dropDatabase } from '../src/db/migrate.js'
import { entryArgs, runToEnd } from './process.js'

const PG = process.env.TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432'

t.test('migrate creates the database and is safe to run twice, from two processes at once', async (t) => {
  const name = `fcfs_mig_${randomBytes(4).toString('hex')}`
  t.teardown(() => dropDatabase(`${PG}/${name}`))
  const run = async () => {
    const r = await runToEnd(process.execPath, entryArgs('scripts/migrate'), { DATABASE_URL: `${PG}/${name}` })
    return { code: r.code, out: r.stdout + r.stderr }
  }
  const both = await Promise.all([run(), run()])
  for (const r of both) t.equal(r.code, 0, r.out)
  const again = await run()
  t.equal(again.code, 0, 'a second run is a no-op')
  const db = postgres(`${PG}/${name}`, { max: 1, onnotice: () => {} })
  const tables = await db`SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1`
  const applied = await db`SELECT count(*)::int AS n FROM drizzle.__drizzle_migrations`
  await db.end()
  t.ok(['campaigns', 'claims', 'failed_claims'].every((n) => tables.some((r) => r.tablename === n)))
  t.ok(applied[0]!.n >= 1)
})
