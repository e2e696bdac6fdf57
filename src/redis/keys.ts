/**
 * Every Redis key is built here. A campaign lives in partition (id mod partitions); its keys and the
 * stream its claims go to share the hash tag {p<n>}, so one script touches one Cluster slot.
 */
export function createKeys(prefix: string, partitions: number) {
  const partitionOf = (campaignId: string | bigint): number => Number(BigInt(campaignId) % BigInt(partitions))
  const tag = (p: number) => `${prefix}:{p${p}}`
  const campaign = (id: string | bigint) => `${tag(partitionOf(id))}:campaign:${id}`
  return {
    prefix,
    partitions,
    partitionOf,
    /** Hash: name, stock, perUserLimit, opensAt, closesAt (ms or ''), issued. */
    campaign,
    /** Hash: userId -> "seq:claimId:claimedAtMs,..." (the user's claims, in order). */
    users: (id: string | bigint) => `${campaign(id)}:users`,
    /** String: the stored answer for (user, Idempotency-Key), expires after IDEMPOTENCY_TTL_S. */
    idempotency: (id: string | bigint, userId: string,
      key: string) => `${campaign(id)}:idem:${userId.length}:${userId}:${key}`,
    /** Stream of issued claims of every campaign in partition p. */
    stream: (p: number) => `${tag(p)}:claims`,
    streamOf: (id: string | bigint) => `${tag(partitionOf(id))}:claims`,
    streams: () => Array.from({ length: partitions }, (_, p) => `${tag(p)}:claims`),
    /** Pub/sub channel announcing campaign state changes (stock added, state rebuilt). */
    events: () => `${prefix}:events`,
    rateLimitNamespace: () => `${prefix}:rl:`,
  }
}

export type Keys = ReturnType<typeof createKeys>
