/**
 * The worker's retry rule: every step that talks to Redis or PostgreSQL is retried with capped backoff
 * until it succeeds or the shutdown deadline passes; a refused command (ACL) is never retried.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { Logger } from 'pino'
import { errorText } from './persist.js'

/** The batch in hand was left pending at shutdown (another worker reclaims it). */
export class GiveUp extends Error {}

/** Redis refused a command to the worker's ACL user: retrying cannot help, so the worker stops and says which. */
export class CommandRefusedError extends Error {}
export const isNoPerm = (err: unknown) => /^NOPERM/.test((err as Error)?.message ?? '')
export const refused = (what: string, err: unknown) => new CommandRefusedError(
  `${what}: Redis refused a command the worker needs (${(err as Error).message}); ` +
    'grant it to the ACL user (docs/security.md)')

/** Whether the worker is stopping, and until when it may still retry the batch in hand. */
export interface Shutdown {
  stopping: boolean
  deadline: number
  /** Rejects once the deadline passes (see createShutdown). */
  expired: Promise<never>
  /** Starts stopping: retries end timeoutMs from now. Returns a function that cancels the deadline timer. */
  begin(timeoutMs: number): () => void
}

export function createShutdown(): Shutdown {
  // Rejected when the shutdown deadline passes, so that an attempt stuck inside the driver (postgres.js
  // delays reconnects by its own backoff, which grows with every failed connect of the pool: several
  // batches failing at once push it to seconds) cannot hold the shutdown past WORKER_SHUTDOWN_TIMEOUT_MS.
  let expire!: (err: Error) => void
  const expired = new Promise<never>((_resolve, reject) => { expire = reject })
  expired.catch(() => {})
  const s: Shutdown = {
    stopping: false,
    deadline: Infinity,
    expired,
    begin(timeoutMs) {
      s.stopping = true
      s.deadline = Date.now() + timeoutMs
      const timer = setTimeout(() => expire(deadlinePassed), timeoutMs)
      return () => clearTimeout(timer)
    },
  }
  return s
}

const deadlinePassed = new Error('shutdown deadline passed')

export type Retrying = <T>(what: string, fn: () => Promise<T>) => Promise<T>

/** Retries fn with capped exponential backoff until it succeeds, or until the shutdown deadline. */
export function createRetrying(log: Logger, shutdown: Shutdown): Retrying {
  return async function retrying<T>(what: string, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        const pending = fn()
        // An abandoned attempt acks nothing (acks follow a commit inside the same await chain).
        pending.catch(() => {})
        return await Promise.race([pending, shutdown.expired])
      } catch (err) {
        if (isNoPerm(err)) throw refused(what, err)
        if (err === deadlinePassed || (shutdown.stopping && Date.now() >= shutdown.deadline)) throw new GiveUp(
          `${what}: gave up at shutdown: ${errorText(err)}`)
        const delayMs = Math.min(2000, 100 * 2 ** Math.min(attempt - 1, 5)) * (0.5 + Math.random() / 2)
        log.warn({ what, attempt, delayMs: Math.round(delayMs), err: errorText(err) }, `${what} failed, retrying`)
        await sleep(shutdown.stopping ? Math.max(0, Math.min(delayMs, shutdown.deadline - Date.now())) : delayMs)
      }
    }
  }
}
