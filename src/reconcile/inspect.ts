/**
 * The read-only half of reconcile: walks one campaign's users hash, its partition stream and its rows
 * in pages, marks every sequence seen in a bitset per place, and classifies the differences.
 *
 * Why it is safe to run while claims flow: a claim is written to the users hash and the stream in one
 * script, reaches the database later, and leaves the stream only after its row is committed. The
 * places are read in that order (users, then stream, then database), so a claim seen in the users hash
 * but in neither later place was not merely moving: if it had left the stream before the stream was
 * read, its row was already committed before the database was read. Claims issued after the check
 * began (sequence above the issued counter read first) are left out of LOST: they may not have
 * reached the stream page we read.
 */
import type { Db } from '../db/client.js'
import type { CampaignRow } from '../campaigns/repository.js'
import type { Keys } from '../redis/keys.js'
import { SeqBitset, SeqFingerprints, fingerprint } from './bitset.js'
import { readIssued, readRawLiveState, storedSettings } from '../redis/campaign-hash.js'
import { addExample, driftOf, emptyClasses, type CampaignReport } from './report.js'
import { claimStats, parseRecord, scanClaims, scanDeadLetters, scanStream, scanUsers } from './sources.js'
import { claimState, holdsUnit } from '../redis/users-record.js'
import type { ClaimRecord } from './restore-users.js'
import type { Progress } from './progress.js'
import type { RedisClient } from '../redis/client.js'

export interface ReconcileDeps {
  redis: RedisClient
  db: Db
  keys: Keys
  pageSize: number
  progress: Progress
  /** A live state rebuilt by the repair stays fenced (unstamped) for the caller to lift: src/recovery/. */
  keepFence?: boolean
}

export interface Inspection {
  report: CampaignReport
  campaign: CampaignRow
  /** The live hash holds what claim.lua needs (stock, perUserLimit, issued). */
  hasLive: boolean
  /** Sequences of claims in the users hash that no stream, row or dead letter holds. */
  lost: SeqBitset
  /** Sequences of rows / stream entries to give back to their users' records. */
  restore: SeqBitset
  /**
   * Conflicted sequences whose row or stream entry is missing from its own user's record: the claim goes
   * back to that user's record all the same (the sequence stays a conflict), so that user's per-user limit
   * does not open after a loss (issue 19).
   */
  restoreHolders: SeqBitset
  /** Highest sequence any place knows was handed out: issued must be at least this. */
  needIssued: number
  /** live-state.lua has something to repair (settings, stock below the database's, issued behind). */
  repairLiveState: boolean
  /** Rows cancelled or expired: the units a rebuilt live state may count as returned. */
  releasedRows: number
  /** Claims cancelled or expired in Redis whose row is still active and whose event is no longer on the way. */
  unappliedEvents: LifecycleFix[]
}

interface LifecycleFix {
  userId: string; claimId: string; sequence: number; claimedAt: number; kind: 'cancel' | 'expire' }

const holds = (record: string | null | undefined, claimId: string) => record != null && record.includes(`:${claimId}:`)

const num = (v: string | undefined) => (v === undefined || v === '' ? NaN : Number(v))

/** The campaign hash as gather() read it. */
interface LiveRead {
  /** The hash as stored, or null when Redis has none. */
  raw: Record<string, string> | null
  /** It holds what claim.lua needs (stock, perUserLimit, issued). */
  hasLive: boolean
  /** issued when the check began, and when the scans ended (NaN without live state). */
  issuedStart: number
  issuedEnd: number
}

/** One bit per sequence per place (see bitset.ts): memory stays ~size/8 bytes per set. */
interface Seen {
  users: SeqBitset
  /** Users-hash claims old enough to be judged LOST. */
  eligible: SeqBitset
  stream: SeqBitset
  db: SeqBitset
  dead: SeqBitset
}

/** What the walk found while reading, before compare() judges by sequence. */
interface Found {
  /** Sequences of rows / stream entries to give back to their users' records. */
  restore: SeqBitset
  restoreHolders: SeqBitset
  conflict: SeqBitset
  /** Sequences some place holds above the issued counter read with them. */
  beyondCounter: SeqBitset
  malformedUsers: number
  /** Cancelled or expired claims in the users' records: units Redis says came back. */
  releasedInUsers: number
  unappliedEvents: LifecycleFix[]
  /** Examples found while reading (conflicts, records missing, lifecycle, malformed records). */
  classes: CampaignReport['classes']
}

/** What gather() read of the three places, per sequence, before anything is judged. */
export interface Sides { live: LiveRead; seen: Seen; found: Found }

/** One gather() walk: what it reads with, and what it has marked so far. */
interface Walk {
  deps: ReconcileDeps
  id: string
  usersKey: string
  hasLive: boolean
  issuedStart: number
  seen: Seen
  found: Omit<Found, 'malformedUsers'>
  /** Which claim Redis's records hold at each sequence. */
  heldBy: SeqFingerprints
  malformedUsers: Set<string>
  /** Claims with a lifecycle event still in the stream (on its way to the database). */
  eventsInStream: Set<string>
}

/** Redis's issued counter now (Infinity without live state: nothing is judged against it). */
const issuedNow = async (w: Walk) =>
  (w.hasLive ? ((await readIssued(w.deps.redis, w.deps.keys, w.id)) ?? NaN) : Infinity)

function newWalk(deps: ReconcileDeps, id: string, hasLive: boolean, issuedStart: number, size: number): Walk {
  const bits = () => new SeqBitset(size)
  return {
    deps, id, usersKey: deps.keys.users(id), hasLive, issuedStart,
    seen: { users: bits(), eligible: bits(), stream: bits(), db: bits(), dead: bits() },
    found: { restore: bits(), restoreHolders: bits(), conflict: bits(), beyondCounter: bits(), releasedInUsers: 0,
      unappliedEvents: [],
      classes: emptyClasses() },
    heldBy: new SeqFingerprints(size),
    malformedUsers: new Set(),
    eventsInStream: new Set(),
  }
}

function markConflict(w: Walk, c: ClaimRecord, detail: string) {
  w.found.conflict.add(c.sequence)
  w.found.restore.delete(c.sequence)
  addExample(w.found.classes.conflicts, { claimId: c.claimId, userId: c.userId, sequence: c.sequence, detail })
}

/** A row or stream entry whose sequence Redis's records give to a different claim. */
function conflicts(w: Walk, c: ClaimRecord): boolean {
  if (!w.seen.users.has(c.sequence) || w.heldBy.get(c.sequence) === fingerprint(c.claimId)) return false
  markConflict(w, c, 'Redis holds another claim at this sequence')
  return true
}

/** Given back to Redis by --fix; never over a sequence another claim holds there. */
function markMissing(w: Walk, c: ClaimRecord, detail: string) {
  if (w.found.conflict.has(c.sequence)) return
  w.found.restore.add(c.sequence)
  addExample(w.found.classes.redisLost, { claimId: c.claimId, userId: c.userId, sequence: c.sequence, detail })
}

/** 1. Users hash: which claim each record holds at each sequence, and which units came back. */
async function walkUsers(w: Walk): Promise<void> {
  const { seen, found } = w
  for await (const page of scanUsers(w.deps.redis, w.usersKey, w.deps.pageSize)) {
    const issued = await issuedNow(w) // read after the page: a record above it is not a fresh claim
    for (const [userId, record] of page) {
      const parsed = parseRecord(userId, record)
      if (parsed.malformed.length > 0 && !w.malformedUsers.has(userId) && w.malformedUsers.size < 10_000) {
        w.malformedUsers.add(userId)
        addExample(found.classes.counters, { userId,
          detail: `malformed record for user ${userId}: ${parsed.malformed[0]}` })
      }
      for (const c of parsed.claims) {
        const fp = fingerprint(c.claimId)
        // Two different claims recorded at one sequence (HSCAN repeating a field repeats the same claim).
        if (seen.users.has(c.sequence) && w.heldBy.get(c.sequence) !== fp) markConflict(w, c,
          'two Redis records hold this sequence')
        w.heldBy.set(c.sequence, fp)
        seen.users.add(c.sequence)
        if (!w.hasLive || c.sequence <= w.issuedStart || c.sequence > issued) seen.eligible.add(c.sequence)
        if (!holdsUnit(c.mark)) found.releasedInUsers++
        if (c.sequence > issued) found.beyondCounter.add(c.sequence)
      }
    }
    w.deps.progress.add(page.length)
  }
}

/** 2. Stream (pending entries included: they stay in the stream until acked and deleted). */
async function walkStream(w: Walk): Promise<void> {
  const { redis, keys, pageSize, progress } = w.deps
  for await (const { claims, read } of scanStream(redis, keys.streamOf(w.id), w.id, pageSize)) {
    if (claims.length > 0) {
      const [records, issued] = await Promise.all([
        redis.hmget(w.usersKey, ...claims.map((c) => c.userId)),
        issuedNow(w),
      ])
      claims.forEach((c, i) => {
        if (c.type !== undefined && w.eventsInStream.size < 1_000_000) w.eventsInStream.add(c.claimId)
        w.seen.stream.add(c.sequence)
        if (c.sequence > issued) w.found.beyondCounter.add(c.sequence)
        if (conflicts(w, c)) {
          if (!holds(records[i], c.claimId)) w.found.restoreHolders.add(c.sequence)
          return
        }
        if (!holds(records[i], c.claimId)) markMissing(w, c, 'in the stream, missing from the user\'s record')
      })
    }
    progress.add(read)
  }
}

/** A row active in the database whose claim Redis's record says was cancelled or expired, no event on the way. */
function checkLifecycle(w: Walk, r: ClaimRecord, record: string) {
  const mine = parseRecord(r.userId, record).claims.find((x) => x.claimId === r.claimId)
  if (!mine || holdsUnit(mine.mark)) return
  const kind = mine.mark === 'c' ? 'cancel' as const : 'expire' as const
  w.found.unappliedEvents.push({ userId: r.userId, claimId: r.claimId, sequence: r.sequence, claimedAt: r.claimedAt,
    kind })
  addExample(w.found.classes.lifecycle, { claimId: r.claimId, userId: r.userId, sequence: r.sequence,
    detail: `${claimState(mine.mark)} in Redis, active in the database` })
}

/** 3. Database rows, by sequence. */
async function walkRows(w: Walk): Promise<void> {
  const { redis, db, pageSize, progress } = w.deps
  for await (const rows of scanClaims(db, w.id, pageSize)) {
    const [records, issued] = await Promise.all([
      redis.hmget(w.usersKey, ...rows.map((r) => r.userId)),
      issuedNow(w),
    ])
    rows.forEach((r, i) => {
      w.seen.db.add(r.sequence)
      if (conflicts(w, r)) {
        if (!holds(records[i], r.claimId)) w.found.restoreHolders.add(r.sequence)
        return
      }
      if (!holds(records[i], r.claimId)) markMissing(w, r, 'in the database, missing from the user\'s record')
      else if (r.sequence > issued) markMissing(w, r, `in the database beyond issued ${issued}`)
      else if (!r.released && !w.eventsInStream.has(r.claimId)) checkLifecycle(w, r, records[i]!)
    })
    progress.add(rows.length)
  }
}

/** 4. Dead letters: issued, then given up on by the worker; not LOST (re-enqueueing would fail again). */
async function walkDeadLetters(w: Walk): Promise<void> {
  for await (const page of scanDeadLetters(w.deps.db, w.id, w.deps.pageSize)) {
    for (const d of page) w.seen.dead.add(d.sequence)
  }
}

/**
 * Gather: reads the users hash, then the stream, then the rows and dead letters, in pages, marking each
 * sequence per place. A stream entry or row is checked against its user's record as read with it, so
 * conflicts and records missing are found here.
 */
async function gather(deps: ReconcileDeps, campaign: CampaignRow): Promise<{ sides: Sides;
  stats: Awaited<ReturnType<typeof claimStats>> }> {
  const { redis, db, keys } = deps
  const id = String(campaign.id)
  const raw = await readRawLiveState(redis, keys, id)
  const hasLive = raw !== null && [raw.stock, raw.perUserLimit, raw.issued].every((v) => Number.isFinite(num(v)))
  const issuedStart = hasLive ? num(raw!.issued) : 0
  const stats = await claimStats(db, id)
  const [usersLen, streamLen] = await Promise.all([redis.hlen(keys.users(id)), redis.xlen(keys.streamOf(id))])
  // Sized by what was issued, not by stock (a campaign may have a huge stock and few claims); grows on demand.
  const w = newWalk(deps, id, hasLive, issuedStart, Math.max(issuedStart, stats.maxSequence))

  deps.progress.start(`campaign ${id}`, usersLen + streamLen + stats.rows)
  await walkUsers(w)
  await walkStream(w)
  await walkRows(w)
  await walkDeadLetters(w)
  const issuedEnd = hasLive ? await issuedNow(w) : NaN
  deps.progress.stop()
  return {
    sides: { live: { raw, hasLive, issuedStart, issuedEnd }, seen: w.seen,
      found: { ...w.found, malformedUsers: w.malformedUsers.size } },
    stats,
  }
}

/** The settings compare() checks the live hash against: the database's. */
type Settings = Pick<CampaignRow, 'name' | 'stock' | 'perUserLimit' | 'opensAt' | 'closesAt' | 'holdSeconds'>

/**
 * Compare: classifies the gathered sides by sequence (in flight, LOST, dead-lettered, gaps) and checks the
 * live hash's counters and settings against the database's. No I/O; fills the counts of sides.classes.
 */
export function compare(sides: Sides, campaign: Settings): { lost: SeqBitset; needIssued: number;
  repairLiveState: boolean } {
  const { raw, hasLive, issuedStart, issuedEnd } = sides.live
  const { users: inUsers, eligible, stream: inStream, db: inDb, dead } = sides.seen
  const { restore, conflict, beyondCounter, releasedInUsers, unappliedEvents, classes } = sides.found
  const [maxUsersSeq, maxStreamSeq, maxDbSeq] = [inUsers.max(), inStream.max(), inDb.max()]
  // Classify by sequence.
  const top = Math.max(eligible.max(), inStream.max(), inUsers.max(), inDb.max(), issuedStart)
  const lost = new SeqBitset(top)
  let inFlight = 0
  let deadLettered = 0
  let gaps = 0
  const gapExamples: number[] = []
  for (let s = 1; s <= top; s++) {
    const stream = inStream.has(s)
    const row = inDb.has(s)
    if (stream && !row) inFlight++
    if (eligible.has(s) && !stream && !row) {
      if (dead.has(s)) deadLettered++
      else lost.add(s)
    }
    if (hasLive && s <= issuedStart && !inUsers.has(s) && !stream && !row && !dead.has(s)) {
      gaps++
      if (gapExamples.length < 5) gapExamples.push(s)
    }
  }
  classes.inFlight.count = inFlight
  classes.lost.count = lost.count()
  classes.deadLettered.count = deadLettered
  classes.redisLost.count = restore.count()
  classes.conflicts.count = conflict.count()
  classes.gaps.count = gaps
  classes.lifecycle.count = unappliedEvents.length
  for (const s of gapExamples) addExample(classes.gaps, { sequence: s,
    detail: 'issued, held by no record, stream entry or row' })

  const needIssued = Math.max(maxUsersSeq, maxStreamSeq, maxDbSeq, dead.max())
  let repairLiveState = false
  const counters = classes.counters
  counters.count = sides.found.malformedUsers
  const problem = (detail: string, fixable: boolean) => {
    counters.count++
    addExample(counters, { detail })
    if (fixable) repairLiveState = true
  }
  if (!hasLive) {
    classes.liveStateMissing.count = 1
    addExample(classes.liveStateMissing, {
      detail: raw === null
        ? 'no campaign hash in Redis (claims answer 503)'
        : 'campaign hash incomplete (claims answer 503)',
    })
  } else {
    const r = raw!
    if (beyondCounter.count() > 0) {
      problem(`issued ${issuedEnd} is below the highest sequence Redis holds (${Math.max(maxUsersSeq, maxStreamSeq)})`,
        true)
    }
    const stock = num(r.stock)
    if (stock < campaign.stock) problem(`stock in Redis ${stock} < stock in the database ${campaign.stock}`, true)
    if (stock > campaign.stock) problem(
      `stock in Redis ${stock} > stock in the database ${campaign.stock} (never lowered: check the database)`, false)
    const returned = num(r.returned ?? '0')
    if (issuedEnd - returned > Math.max(stock,
      campaign.stock)) problem(
      `issued ${issuedEnd} - returned ${returned} ` +
        `exceeds stock ${Math.max(stock, campaign.stock)} (oversold in Redis)`, false)
    // Every cancelled or expired record gave exactly one unit back (records are read before the counter).
    if (returned < releasedInUsers) problem(
      `returned ${returned} is below the ${releasedInUsers} cancelled or expired claims in the users' records`, false)
    for (const [field, value] of Object.entries(storedSettings(campaign))) {
      if ((r[field] ?? '') !== value) problem(
        `${field} in Redis ${JSON.stringify(r[field] ?? null)} != database ${JSON.stringify(value)}`, true)
    }
    // Rows beyond the counter are restored by raising issued; the raise is live-state.lua's job too.
    if (needIssued > issuedEnd) repairLiveState = true
  }

  return { lost, needIssued, repairLiveState }
}

/** Gather, then compare; repairing is repair.ts's (reconcile --fix). */
export async function inspectCampaign(deps: ReconcileDeps, campaign: CampaignRow): Promise<Inspection> {
  const id = String(campaign.id)
  const { sides, stats } = await gather(deps, campaign)
  const { lost, needIssued, repairLiveState } = compare(sides, campaign)
  const report: CampaignReport = {
    campaignId: id,
    name: campaign.name,
    issued: sides.live.hasLive ? sides.live.issuedStart : null,
    persisted: stats.rows,
    classes: sides.found.classes,
    drift: 0,
    remaining: null,
    remainingClasses: null,
  }
  report.drift = driftOf(sides.found.classes)
  return { report, campaign, hasLive: sides.live.hasLive, lost, restore: sides.found.restore,
    restoreHolders: sides.found.restoreHolders, needIssued,
    repairLiveState, releasedRows: stats.released, unappliedEvents: sides.found.unappliedEvents }
}

/** Walks the users hash once more for the LOST claims' details (examples, and what --fix re-enqueues). */
export async function* lostClaims(deps: ReconcileDeps, id: string, lost: SeqBitset): AsyncGenerator<ClaimRecord[]> {
  const pending = lost.count()
  if (pending === 0) return
  const seen = new SeqBitset(lost.max())
  for await (const page of scanUsers(deps.redis, deps.keys.users(id), deps.pageSize)) {
    const out: ClaimRecord[] = []
    for (const [userId, record] of page) {
      for (const c of parseRecord(userId, record).claims) {
        // HSCAN may return a field twice: each sequence is handled once.
        if (lost.has(c.sequence) && !seen.has(c.sequence)) {
          seen.add(c.sequence)
          out.push(c)
        }
      }
    }
    if (out.length) yield out
  }
}

export function exampleOf(c: ClaimRecord): Parameters<typeof addExample>[1] {
  return { claimId: c.claimId, userId: c.userId, sequence: c.sequence }
}
