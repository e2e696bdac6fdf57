import { desc, eq, inArray, sql } from 'drizzle-orm'
import type { Db } from '../db/client.js'
import { campaigns, claims } from '../db/schema.js'

export type CampaignRow = typeof campaigns.$inferSelect
/** The database or a transaction on it: the admin writes run inside one with their Idempotency-Key. */
export type Tx = Parameters<Parameters<Db['transaction']>[0]>[0]
export type Exec = Db | Tx

export function createCampaignsRepository(db: Db) {
  return {
    async create(input: {
      name: string; stock: number; perUserLimit: number; opensAt: Date | null; closesAt: Date | null
    }, exec: Exec = db): Promise<CampaignRow> {
      const [row] = await exec.insert(campaigns).values(input).returning()
      return row!
    },
    async get(id: string): Promise<CampaignRow | null> {
      const [row] = await db.select().from(campaigns).where(eq(campaigns.id, BigInt(id)))
      return row ?? null
    },
    /** The newest campaigns first (the live page's picker). */
    async list(limit: number): Promise<CampaignRow[]> {
      return db.select().from(campaigns).orderBy(desc(campaigns.id)).limit(limit)
    },
    /** Claims rows the worker has written for the campaign. */
    async persistedCount(id: string): Promise<number> {
      const [row] = await db.select({ n: sql<number>`count(*)::int` }).from(claims).where(eq(claims.campaignId,
        BigInt(id)))
      return row?.n ?? 0
    },
    /** Which of these claim ids already have a row. */
    async persistedClaimIds(ids: string[]): Promise<Set<string>> {
      if (ids.length === 0) return new Set()
      const rows = await db.select({ id: claims.claimId }).from(claims).where(inArray(claims.claimId, ids))
      return new Set(rows.map((r) => r.id))
    },
    async addStock(id: string, add: number, exec: Exec = db): Promise<CampaignRow | null> {
      const [row] = await exec.update(campaigns)
        .set({ stock: sql`${campaigns.stock} + ${add}`, updatedAt: sql`now()` })
        .where(eq(campaigns.id, BigInt(id)))
        .returning()
      return row ?? null
    },
  }
}

export type CampaignsRepository = ReturnType<typeof createCampaignsRepository>
