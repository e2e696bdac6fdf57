import { createHash } from 'node:crypto'
import type postgres from 'postgres'
import { withTimeout } from '../timeout.js'
import { checkEvictionPolicy } from '../redis/eviction.js'
import { masters, type RedisClient } from '../redis/client.js'

export type Check = () => Promise<void>
export interface Readiness {
  ready: boolean
  checks: Record<string, string>
  /** Optional dependencies that failed: reported, but they do not fail readiness. */
  degraded: string[]
}

/**
 * Runs every check concurrently, each bounded by timeoutMs, so a probe answers in about timeoutMs even while
 * a client is reconnecting (ioredis would otherwise queue the PING until the connection returns).
 * A failing `required` check fails readiness; a failing `optional` one only marks the answer degraded.
 */
export async function checkReadiness(required: Record<string, Check>, timeoutMs: number, optional: Record<string,
  Check> = {}): Promise<Readiness> {
  const all = { ...required, ...optional }
  const names = Object.keys(all)
  const results = await Promise.allSettled(names.map((n) => withTimeout(all[n]!(), timeoutMs, n)))
  const out: Record<string, string> = {}
  const degraded: string[] = []
  let ready = true
  results.forEach((r, i) => {
    const name = names[i]!
    if (r.status === 'fulfilled') out[name] = 'ok'
    else {
      if (name in required) ready = false
      else degraded.push(name)
      out[name] = r.reason instanceof Error ? r.reason.message : String(r.reason)
    }
  })
  return { ready, checks: out, degraded }
}

/** The eviction policy (see src/redis/eviction.ts) is noeviction, or an unknown one is acknowledged. */
export function evictionCheck(redis: RedisClient, ack: string | undefined): Check {
  return async () => {
    assertReady(redis)
    const status = await checkEvictionPolicy(redis, ack)
    if (!status.ok) throw new Error(status.message)
  }
}

/** Not connected: fail at once instead of queueing behind the reconnect. */
function assertReady(redis: RedisClient): void {
  if (redis.status !== 'ready') throw new Error(`redis connection is ${redis.status}`)
}

/** Every master answers PING (on a cluster, a dead master's slots are claims that would fail). */
export function redisCheck(redis: RedisClient): Check {
  return async () => {
    assertReady(redis)
    await Promise.all(masters(redis).map((node) => node.ping()))
  }
}

export function postgresCheck(sql: postgres.Sql): Check {
  return async () => { await sql`select 1` }
}

/**
 * The Lua scripts are in Redis's script cache. ioredis would re-send a missing script on NOSCRIPT anyway;
 * loading it here (after a failover or SCRIPT FLUSH) also proves this Redis compiles it before traffic arrives.
 * On a cluster each master has its own script cache.
 */
export function scriptsCheck(redis: RedisClient, sources: string[]): Check {
  const shas = sources.map((lua) => createHash('sha1').update(lua).digest('hex'))
  return async () => {
    assertReady(redis)
    await Promise.all(masters(redis).map(async (node) => {
      const exists = (await node.script('EXISTS', ...shas)) as number[]
      await Promise.all(sources.map((lua, i) => (exists[i] ? null : node.script('LOAD', lua))))
    }))
  }
}
