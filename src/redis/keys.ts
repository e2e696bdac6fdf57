import { keySlot, partitionTags } from './slots.js'

/**
 * Every Redis key is built here. A campaign lives in partition (id mod partitions); its keys and the
 * stream its claims go to share the partition's hash tag, so one script touches one Cluster slot. The
 * tags include the prefix and are placed on evenly spaced slots (slots.ts).
 */
export function createKeys(prefix: string, partitions: number) {
  const tags = partitionTags(prefix, partitions)
  const partitionOf = (campaignId: string | bigint): number => Number(BigInt(campaignId) % BigInt(partitions))
  const tag = (p: number) => `${prefix}:{${tags[p]!}}`
  // A claim builds about ten keys of its campaign; each would parse the id as a BigInt again.
  const campaignKeys = new Map<string | bigint, string>()
  const campaign = (id: string | bigint): string => {
    let key = campaignKeys.get(id)
    if (key === undefined) {
      key = `${tag(partitionOf(id))}:campaign:${id}`
      if (campaignKeys.size >= 10_000) campaignKeys.clear()
      campaignKeys.set(id, key)
    }
    return key
  }
  const stream = (p: number) => `${tag(p)}:claims`
  const streamNames = new Map(Array.from({ length: partitions }, (_, p) => [stream(p), p]))
  const streamIndex = (key: string) => streamNames.get(key) ?? -1
  return {
    prefix,
    partitions,
    partitionOf,
    /** The Cluster slot of partition p (every key of its campaigns and its stream). */
    slotOf: (p: number) => keySlot(tag(p)),
    /** A hash tag in the campaign's slot, for keys built outside this module (the rate limiter's). */
    tagOf: (id: string | bigint) => `{${tags[partitionOf(id)]!}}`,
    /** Hash: the campaign's settings and counters (campaign-hash.ts and .lua). */
    campaign,
    /** Hash: userId -> the user's claims, in order (users-record.ts and .lua). */
    users: (id: string | bigint) => `${campaign(id)}:users`,
    /** Sorted set: claimId..userId -> expiresAtMs of the campaign's open holds (campaigns with holdSeconds). */
    holds: (id: string | bigint) => `${campaign(id)}:holds`,
    /** Hash: claimId -> ms its mark was set (cancelled, confirmed, expired); what a replayed answer repeats. */
    marks: (id: string | bigint) => `${campaign(id)}:marks`,
    /** Hash: userId -> "ticket:joinedAtMs:position" (position empty until the draw) of the waiting room. */
    queueUsers: (id: string | bigint) => `${campaign(id)}:q:users`,
    /** Hash: position -> "joinedAtMs:userId" (who stands at each place in line). */
    queuePositions: (id: string | bigint) => `${campaign(id)}:q:pos`,
    /** Sorted set: position -> admittedUntilMs of admitted users who have not claimed yet. */
    queueAdmits: (id: string | bigint) => `${campaign(id)}:q:admits`,
    /** List: the pre-queue's tickets in drawn order (GET .../queue/draw pages it). */
    queueDraw: (id: string | bigint) => `${campaign(id)}:q:draw`,
    /** List: "a:position:atMs:joinedAtMs" admissions and "x:position:atMs" expiries, in order (the report). */
    queueLog: (id: string | bigint) => `${campaign(id)}:q:log`,
    /** Hash: HTTP status -> claim answers on a queued campaign, summed by every instance (the report). */
    queueAnswers: (id: string | bigint) => `${campaign(id)}:q:answers`,
    /** String: the draw's lock (one instance writes the drawn positions). */
    queueDrawLock: (id: string | bigint) => `${campaign(id)}:q:drawlock`,
    /** String: the stored answer for (user, Idempotency-Key), expires after IDEMPOTENCY_TTL_S. */
    idempotency: (id: string | bigint, userId: string,
      key: string) => `${campaign(id)}:idem:${userId.length}:${userId}:${key}`,
    /** String: the lease of the instance repairing the campaign after a Redis restart or failover (src/recovery/). */
    recoveryLease: (id: string | bigint) => `${campaign(id)}:recovering`,
    /** String: a user's request count in the RATE_LIMIT_USER_WINDOW_MS window (claim.lua, same slot). */
    userRate: (id: string | bigint, userId: string) => `${campaign(id)}:rl:${userId.length}:${userId}`,
    /** Stream of issued claims and their lifecycle events, of every campaign in partition p. */
    stream,
    streamOf: (id: string | bigint) => stream(partitionOf(id)),
    streams: () => Array.from({ length: partitions }, (_, p) => stream(p)),
    /** Counter in partition p's slot: the marker a durability round writes before its WAIT (src/durability/). */
    durabilityMarker: (p: number) => `${tag(p)}:durable`,
    /** The partition of a stream key (-1 for another key). */
    partitionOfStream: (key: string) => streamIndex(key),
    /** Pub/sub channel announcing campaign state changes (stock added, state rebuilt). */
    events: () => `${prefix}:events`,
  }
}

export type Keys = ReturnType<typeof createKeys>
