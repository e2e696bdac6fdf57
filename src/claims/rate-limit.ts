import { createRequire } from 'node:module'
import type { FastifyRateLimitStoreCtor } from '@fastify/rate-limit'
import type { RedisClient } from '../redis/client.js'

const require = createRequire(import.meta.url)
// The plugin's own stores; it exports no types for them.
const LocalStore = require('@fastify/rate-limit/store/LocalStore') as new (...a: unknown[]) => Store
const RedisStore = require('@fastify/rate-limit/store/RedisStore') as new (...a: unknown[]) => Store

type Cb = (err: Error | null, res?: { current: number; ttl: number }) => void
interface Store {
  incr(key: string, cb: Cb, timeWindow: number, max: number): void
  read?(key: string, cb: Cb, timeWindow: number, max: number): void
  child(routeOptions: unknown): Store
}
interface Params { continueExceeding?: boolean; exponentialBackoff?: boolean }

export const IP_KEY = 'ip:'

/**
 * A store for @fastify/rate-limit that keeps per-IP counters in process memory and per-user counters in
 * Redis. The per-user limit must hold across instances; the looser per-IP limit is a local flood guard,
 * and keeping it local spares the claim's hot path a second Redis round trip.
 */
export function createRoutingStore(redis: RedisClient, namespace: string,
  timeoutMs: number): FastifyRateLimitStoreCtor {
  return class RoutingStore implements Store {
    private readonly local: Store
    private readonly remote: Store
    constructor(params: unknown, local?: Store, remote?: Store) {
      const p = params as Params
      this.local = local ?? new LocalStore(p.continueExceeding, p.exponentialBackoff, 50_000)
      this.remote = remote ?? new RedisStore(p.continueExceeding, p.exponentialBackoff, redis, namespace)
    }

    incr(key: string, cb: Cb, timeWindow: number, max: number) {
      if (key.startsWith(IP_KEY)) return this.local.incr(key, cb, timeWindow, max)
      // Redis not connected: fail at once (RATE_LIMIT_FAIL_OPEN decides) instead of spending the claim's
      // command timeout on the limiter before the claim itself waits for it again.
      if (redis.status !== 'ready') return cb(Object.assign(new Error(`redis connection is ${redis.status}`),
        { code: 'CONNECTION_CLOSED' }))
      // A frozen Redis: the limiter gives up well before the command timeout, so the claim behind it still
      // answers within one REDIS_COMMAND_TIMEOUT_MS.
      let done = false
      const timer = setTimeout(() => {
        done = true
        cb(Object.assign(new Error(`rate limit store did not answer within ${timeoutMs} ms`), { code: 'ETIMEDOUT' }))
      }, timeoutMs)
      this.remote.incr(key, (err, res) => {
        if (done) return
        clearTimeout(timer)
        cb(err, res)
      }, timeWindow, max)
    }

    read(key: string, cb: Cb, timeWindow: number, max: number) {
      (key.startsWith(IP_KEY) ? this.local : this.remote).read!(key, cb, timeWindow, max)
    }

    child(routeOptions: unknown): RoutingStore {
      return new RoutingStore(routeOptions as Params, this.local.child(routeOptions), this.remote.child(routeOptions))
    }
  }
}
