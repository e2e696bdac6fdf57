/**
 * Every Lua script the services run, in one registry: its command name, how many of its arguments are
 * KEYS, its typed signature and its file. Each .lua stays next to the feature that owns it (its header
 * lists KEYS, ARGV and the returns); this module only lists them, so one defineScripts() registers them all
 * and readiness loads them all. A stored format's Lua side is a library next to its TypeScript side
 * (src/redis/users-record.lua, campaign-hash.lua, stream-entry.lua): a script names what it needs with
 * `-- @include <path from src/>` lines in its header, and the library is prepended (Redis has no includes).
 * ioredis sends EVALSHA and falls back to EVAL on NOSCRIPT (SCRIPT FLUSH, a failover), on a single Redis and
 * on a Cluster alike.
 */
import { readFileSync } from 'node:fs'
import type { ClientContext, Result } from 'ioredis'
import type { RedisClient } from './client.js'

/**
 * The typed signatures: KEYS first (numberOfKeys of them), then ARGV, as each script's header lists them.
 * RedisCommander extends this below, so `redis.fcfsClaim(...)` is typed on Redis and Cluster clients.
 */
interface ScriptCommands<Context extends ClientContext> {
  fcfsClaim(campaign: string, users: string, stream: string, idem: string, userRate: string, holds: string,
    marks: string, queueUsers: string, queueAdmits: string, claimId: string, campaignId: string, userId: string,
    idemTtlS: number, useIdem: '0' | '1', userMax: number, userWindowMs: number,
    deadlineMs: number, fence: '0' | '1'): Result<unknown[], Context>
  fcfsMirror(campaign: string, mode: 'create' | 'update', name: string, stock: number, perUserLimit: number,
    opensAt: string, closesAt: string, holdSeconds: string, ...queue: string[]): Result<number[], Context>
  fcfsCancel(campaign: string, users: string, stream: string, holds: string, marks: string,
    campaignId: string, userId: string, claimId: string, reason: string, fence: '0' | '1'): Result<number[], Context>
  fcfsConfirm(campaign: string, users: string, stream: string, holds: string, marks: string,
    campaignId: string, userId: string, claimId: string, fence: '0' | '1'): Result<number[], Context>
  fcfsSweepHolds(campaign: string, users: string, stream: string, holds: string, marks: string, campaignId: string,
    max: number): Result<number[], Context>
  fcfsEndCampaign(campaign: string, holds: string, mode: 'end' | 'reopen'): Result<number[], Context>
  fcfsRestoreUsers(campaign: string, users: string, top: number, ...pairs: string[]): Result<[number, number], Context>
  fcfsLiveState(campaign: string, create: '0' | '1', name: string, stock: number, perUserLimit: number,
    opensAt: string, closesAt: string, minIssued: number, holdSeconds: string, returned: number, ...queue: string[]):
    Result<number[], Context>
  fcfsReenqueue(users: string, stream: string, campaignId: string, ...quads: (string | number)[]): Result<number,
    Context>
  fcfsQueueLine(campaign: string, queueUsers: string, queuePositions: string, queueAdmits: string, users: string,
    holds: string, mode: 'join' | 'me', userId: string, ticket: string): Result<(string | number)[], Context>
  fcfsQueueAdvance(campaign: string, users: string, stream: string, holds: string, marks: string, queueAdmits: string,
    queuePositions: string, queueLog: string, campaignId: string, max: number): Result<number[], Context>
  fcfsQueueDraw(campaign: string, queueUsers: string, queuePositions: string, draw: string, first: number,
    last: '0' | '1', ...pairs: string[]): Result<number[], Context>
  fcfsQueueState(campaign: string, holds: string, queueAdmits: string): Result<(string | number)[], Context>
  fcfsRecovery(campaign: string, lease: string, mode: 'check' | 'acquire' | 'renew' | 'lift', token: string,
    leaseMs: number): Result<number[], Context>
  fcfsDeleteIdleConsumer(stream: string, group: string, consumer: string, minIdleMs: number): Result<number, Context>
}

declare module 'ioredis' {
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type -- declaration merging: adds the scripts
  interface RedisCommander<Context> extends ScriptCommands<Context> {}
}

export type ScriptName = keyof ScriptCommands<{ type: 'default' }>

interface ScriptSpec {
  /** Path from src/. */
  file: string
  numberOfKeys: number
}

/** Keyed by ScriptName: a signature without a file, or a file without a signature, does not compile. */
const SCRIPTS: Record<ScriptName, ScriptSpec> = {
  /** Issues one claim (or answers why not): users record, counter, stream entry. */
  fcfsClaim: { file: 'claims/claim.lua', numberOfKeys: 9 },
  /** Writes a campaign's settings into its live hash. */
  fcfsMirror: { file: 'campaigns/mirror.lua', numberOfKeys: 1 },
  /** A user's cancel or an admin's revoke: the unit goes back, the event goes on the stream. */
  fcfsCancel: { file: 'lifecycle/cancel.lua', numberOfKeys: 5 },
  /** Confirms a hold before it expires. */
  fcfsConfirm: { file: 'lifecycle/confirm.lua', numberOfKeys: 5 },
  /** Expires a campaign's due holds (the worker's sweep). */
  fcfsSweepHolds: { file: 'lifecycle/sweep-holds.lua', numberOfKeys: 5 },
  /** Ends (or reopens) a campaign before its archive. */
  fcfsEndCampaign: { file: 'lifecycle/end-campaign.lua', numberOfKeys: 2 },
  /** Gives users back the claims Redis lost, raising issued (reconcile). */
  fcfsRestoreUsers: { file: 'reconcile/restore-users.lua', numberOfKeys: 2 },
  /** Rebuilds or raises a campaign's live hash from the database (reconcile). */
  fcfsLiveState: { file: 'reconcile/live-state.lua', numberOfKeys: 1 },
  /** XADDs LOST claims again, confirmed against the users hash (reconcile). */
  fcfsReenqueue: { file: 'reconcile/reenqueue.lua', numberOfKeys: 2 },
  /** Joins a campaign's waiting room, or reads a user's place in it (issue 21). */
  fcfsQueueLine: { file: 'queue/line.lua', numberOfKeys: 6 },
  /** Admits the next positions of a waiting room, expires unused admissions. */
  fcfsQueueAdvance: { file: 'queue/advance.lua', numberOfKeys: 8 },
  /** Writes one batch of a shuffle pre-queue's drawn positions. */
  fcfsQueueDraw: { file: 'queue/draw.lua', numberOfKeys: 4 },
  /** A waiting room's public state (read at most once a second per instance). */
  fcfsQueueState: { file: 'queue/state.lua', numberOfKeys: 3 },
  /** The recovery fence of a campaign: checks it, takes and renews the repair lease, lifts it (issue 19). */
  fcfsRecovery: { file: 'recovery/fence.lua', numberOfKeys: 2 },
  /** Drops another consumer only if it still holds nothing (worker). */
  fcfsDeleteIdleConsumer: { file: 'worker/delete-idle-consumer.lua', numberOfKeys: 1 },
}

const read = (file: string) => readFileSync(new URL(`../${file}`, import.meta.url), 'utf8')

const INCLUDE = /^\s*-- @include (\S+)\s*$/gm

/** The files a Lua source names with `-- @include` (paths from src/), in the order given. */
export const includesOf = (lua: string): string[] => [...lua.matchAll(INCLUDE)].map((m) => m[1]!)

/**
 * A script's source with its libraries in front: each library once, after the libraries it includes itself
 * (Lua locals must be defined before use).
 */
function withIncludes(file: string): string {
  const seen = new Set<string>()
  const parts: string[] = []
  const visit = (f: string) => {
    if (seen.has(f)) return
    seen.add(f)
    const lua = read(f)
    for (const lib of includesOf(lua)) visit(lib)
    parts.push(lua)
  }
  visit(file)
  return parts.join('\n')
}

let sources: Record<ScriptName, string> | undefined

/** Each script's source as sent to Redis (its libraries prepended); read once. */
export function scriptSources(): Record<ScriptName, string> {
  if (sources) return sources
  const out = {} as Record<ScriptName, string>
  for (const [name, s] of Object.entries(SCRIPTS) as [ScriptName, ScriptSpec][]) out[name] = withIncludes(s.file)
  return sources = out
}

/** Each script's own file (path from src/), without its libraries. */
export const scriptFiles = (): Record<ScriptName, string> =>
  Object.fromEntries(Object.entries(SCRIPTS).map(([name, s]) => [name, s.file])) as Record<ScriptName, string>

/** Registers every script on a client (again is harmless: defining a command replaces it). */
export function defineScripts(redis: RedisClient): void {
  const src = scriptSources()
  for (const [name, s] of Object.entries(SCRIPTS) as [ScriptName, ScriptSpec][]) {
    redis.defineCommand(name, { numberOfKeys: s.numberOfKeys, lua: src[name] })
  }
}
