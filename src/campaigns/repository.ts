import { and, asc, desc, eq, inArray, isNull, sql } from 'drizzle-orm'
import type { Db } from '../db/client.js'
import { campaigns, claims } from '../db/schema.js'
import type { QueueColumns } from '../queue/settings.js'

export type CampaignRow = typeof campaigns.$inferSelect
/** The database or a transaction on it: the admin writes run inside one with their Idempotency-Key. */
export type Tx = Parameters<Parameters<Db['transaction']>[0]>[0]
export type Exec = Db | Tx
export type ClaimRowDb = typeof claims.$inferSelect

export function createCampaignsRepository(db: Db) {
  return {
    async create(input: {
      name: string; stock: number; perUserLimit: number;
      opensAt: Date | null; closesAt: Date | null;
      holdSeconds: number | null } & QueueColumns, exec: Exec = db): Promise<CampaignRow> {
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
    /** The owner of a persisted claim of the campaign (admin revoke), or null. */
    async claimOwner(campaignId: string, claimId: string): Promise<string | null> {
      const [row] = await db.select({ userId: claims.userId }).from(claims)
        .where(and(eq(claims.claimId, claimId), eq(claims.campaignId, BigInt(campaignId))))
      return row?.userId ?? null
    },
    /** A user's rows of the campaign, in sequence order (claims/me of an archived campaign). */
    async userClaims(campaignId: string, userId: string): Promise<ClaimRowDb[]> {
      return db.select().from(claims)
        .where(and(eq(claims.campaignId, BigInt(campaignId)), eq(claims.userId, userId)))
        .orderBy(asc(claims.sequence))
    },
    /** What the database holds of a campaign's claims: rows, rows no longer holding a unit, highest sequence. */
    async claimTotals(id: string): Promise<{ rows: number; released: number; maxSequence: number }> {
      const [r] = await db.select({
        rows: sql<number>`count(*)::int`,
        released: sql<number>`count(*) FILTER (WHERE ${claims.cancelledAt} IS NOT NULL
          OR ${claims.expiredAt} IS NOT NULL)::int`,
        maxSequence: sql<number>`coalesce(max(${claims.sequence}), 0)::int`,
      }).from(claims).where(eq(claims.campaignId, BigInt(id)))
      return r ?? { rows: 0, released: 0, maxSequence: 0 }
    },
    /** Marks the campaign archived; the first call's time stays. */
    async markArchived(id: string): Promise<CampaignRow | null> {
      await db.update(campaigns).set({ archivedAt: sql`now()`, updatedAt: sql`now()` })
        .where(and(eq(campaigns.id, BigInt(id)), isNull(campaigns.archivedAt)))
      return this.get(id)
    },
    /**
     * Adds stock unless the total would pass max; the check is in the UPDATE itself, so concurrent additions
     * cannot pass it together. null: no such campaign; { over }: refused, with the stock as it stands.
     */
    async addStock(id: string, add: number, max: number, exec: Exec = db):
      Promise<CampaignRow | { over: true; stock: number } | null> {
      const [row] = await exec.update(campaigns)
        .set({ stock: sql`${campaigns.stock} + ${add}`, updatedAt: sql`now()` })
        .where(and(eq(campaigns.id, BigInt(id)), sql`${campaigns.stock} <= ${max - add}`))
        .returning()
      if (row) return row
      const [current] = await exec.select({ stock: campaigns.stock }).from(campaigns)
        .where(eq(campaigns.id, BigInt(id)))
      return current ? { over: true, stock: current.stock } : null
    },
  }
}

export type CampaignsRepository = ReturnType<typeof createCampaignsRepository>
