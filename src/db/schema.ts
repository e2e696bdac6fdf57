import { sql } from 'drizzle-orm'
import { bigint, check, index, integer, jsonb, pgTable, primaryKey, text, timestamp, unique, uuid,
  bigserial } from 'drizzle-orm/pg-core'

export const campaigns = pgTable('campaigns', {
  id: bigint('id', { mode: 'bigint' }).primaryKey().generatedAlwaysAsIdentity(),
  name: text('name').notNull(),
  stock: integer('stock').notNull(),
  perUserLimit: integer('per_user_limit').notNull().default(1),
  opensAt: timestamp('opens_at', { withTimezone: true, mode: 'date' }),
  closesAt: timestamp('closes_at', { withTimezone: true, mode: 'date' }),
  // Set: a 201 is a hold the user confirms within this many seconds, or its unit goes back (issue 12).
  holdSeconds: integer('hold_seconds'),
  // Set: a waiting room (issue 21) in front of the campaign; only admitted users can claim (src/queue/).
  queueOrder: text('queue_order'),
  queueAdmitPerSecond: integer('queue_admit_per_second'),
  queueAdmitSeconds: integer('queue_admit_seconds'),
  // The draw's secret until opensAt (its SHA-256 is public from creation on).
  queueSeed: text('queue_seed'),
  // Claims rows that hold a unit (not cancelled, not expired): kept by the guard triggers (drizzle/0006),
  // so the stock check costs O(batch) instead of counting the campaign's rows.
  activeClaims: integer('active_claims').notNull().default(0),
  // Archived: the live state left Redis; reads answer from here (src/campaigns/archive.ts).
  archivedAt: timestamp('archived_at', { withTimezone: true, mode: 'date' }),
  createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
}, (t) => [
  check('campaigns_stock_positive', sql`${t.stock} >= 1`),
  check('campaigns_limit_positive', sql`${t.perUserLimit} >= 1`),
  check('campaigns_window_order', sql`${t.opensAt} IS NULL OR ${t.closesAt} IS NULL OR ${t.opensAt} < ${t.closesAt}`),
  check('campaigns_hold_positive', sql`${t.holdSeconds} IS NULL OR ${t.holdSeconds} >= 1`),
  check('campaigns_queue_valid', sql`(${t.queueOrder} IS NULL AND ${t.queueAdmitPerSecond} IS NULL
    AND ${t.queueAdmitSeconds} IS NULL AND ${t.queueSeed} IS NULL) OR (${t.queueOrder} IN ('fifo', 'shuffle')
    AND ${t.queueAdmitPerSecond} BETWEEN 1 AND 100000 AND ${t.queueAdmitSeconds} BETWEEN 1 AND 86400
    AND ${t.queueSeed} IS NOT NULL)`),
])

export const claims = pgTable('claims', {
  claimId: uuid('claim_id').primaryKey(),
  // No FOREIGN KEY: the guard trigger (drizzle/0002) checks the campaign exists, and a trigger on campaigns
  // refuses deleting one that has claims (the per-row FK check cost ~20% of a batch insert).
  campaignId: bigint('campaign_id', { mode: 'bigint' }).notNull(),
  userId: text('user_id').notNull(),
  sequence: integer('sequence').notNull(),
  claimedAt: timestamp('claimed_at', { withTimezone: true, mode: 'date' }).notNull(),
  persistedAt: timestamp('persisted_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  // Lifecycle (issue 12): rows are never deleted; a claim stops holding a unit once cancelled or expired.
  holdExpiresAt: timestamp('hold_expires_at', { withTimezone: true, mode: 'date' }),
  confirmedAt: timestamp('confirmed_at', { withTimezone: true, mode: 'date' }),
  cancelledAt: timestamp('cancelled_at', { withTimezone: true, mode: 'date' }),
  cancelReason: text('cancel_reason'),
  expiredAt: timestamp('expired_at', { withTimezone: true, mode: 'date' }),
}, (t) => [
  unique('claims_campaign_sequence_key').on(t.campaignId, t.sequence),
  index('claims_campaign_user_idx').on(t.campaignId, t.userId),
  check('claims_sequence_positive', sql`${t.sequence} >= 1`),
])

/** Dead letters: stream entries the worker could not persist. */
export const failedClaims = pgTable('failed_claims', {
  id: bigserial('id', { mode: 'bigint' }).primaryKey(),
  stream: text('stream').notNull(),
  entryId: text('entry_id').notNull(),
  fields: jsonb('fields').notNull(),
  error: text('error').notNull(),
  attempts: integer('attempts').notNull(),
  failedAt: timestamp('failed_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  resolvedAt: timestamp('resolved_at', { withTimezone: true, mode: 'date' }),
}, (t) => [
  unique('failed_claims_stream_entry_key').on(t.stream, t.entryId),
])

/**
 * Idempotency-Key of the admin writes: the answer is stored in the same transaction as the write, so a
 * retry (same key) gets the same answer and never repeats the write. mirrored_at: the Redis mirror
 * succeeded once (a replay then only updates the live state, never creates it afresh).
 */
export const adminIdempotencyKeys = pgTable('admin_idempotency_keys', {
  key: text('key').notNull(),
  route: text('route').notNull(),
  requestHash: text('request_hash').notNull(),
  campaignId: bigint('campaign_id', { mode: 'bigint' }).notNull(),
  statusCode: integer('status_code').notNull(),
  response: jsonb('response').notNull(),
  createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  mirroredAt: timestamp('mirrored_at', { withTimezone: true, mode: 'date' }),
}, (t) => [
  primaryKey({ name: 'admin_idempotency_keys_pkey', columns: [t.key] }),
])

/**
 * What the automatic recovery did (issue 19, src/recovery/): one row per campaign repaired after a Redis
 * restart or failover, written by the one instance that held the lease. `npm run reconcile` lists them.
 */
export const recoveries = pgTable('recoveries', {
  id: bigserial('id', { mode: 'bigint' }).primaryKey(),
  campaignId: bigint('campaign_id', { mode: 'bigint' }).notNull(),
  /** run_id of the Redis process the campaign was verified on. */
  node: text('node').notNull(),
  /** 'rebuilt' (Redis had no live state) or 'checked' (live state from another process: restart, failover). */
  reason: text('reason').notNull(),
  /** The API instance that repaired it (hostname:pid). */
  instance: text('instance').notNull(),
  startedAt: timestamp('started_at', { withTimezone: true, mode: 'date' }).notNull(),
  finishedAt: timestamp('finished_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  /** Drift found, by reconcile class (report.ts), and what was repaired. */
  found: jsonb('found').notNull(),
  restored: integer('restored').notNull(),
  reenqueued: integer('reenqueued').notNull(),
  liveState: text('live_state'),
}, (t) => [
  index('recoveries_campaign_idx').on(t.campaignId, t.finishedAt),
])
