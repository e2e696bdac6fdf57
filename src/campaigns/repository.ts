import { eq, sql } from 'drizzle-orm'
import type { Db } from '../db/client.js'
import { campaigns } from '../db/schema.js'

export type CampaignRow = typeof campaigns.$inferSelect

export function createCampaignsRepository(db: Db) {
  return {
    async create(input: { name: string; stock: number; perUserLimit: number; opensAt: Date | null; closesAt: Date | null }): Promise<CampaignRow> {
      const [row] = await db.insert(campaigns).values(input).returning()
      return row!
    },
    async get(id: string): Promise<CampaignRow | null> {
      const [row] = await db.select().from(campaigns).where(eq(campaigns.id, BigInt(id)))
      return row ?? null
    },
    async addStock(id: string, add: number): Promise<CampaignRow | null> {
      const [row] = await db.update(campaigns)
        .set({ stock: sql`${campaigns.stock} + ${add}`, updatedAt: sql`now()` })
        .where(eq(campaigns.id, BigInt(id)))
        .returning()
      return row ?? null
    },
  }
}

export type CampaignsRepository = ReturnType<typeof createCampaignsRepository>
