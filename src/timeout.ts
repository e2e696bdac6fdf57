export class TimeoutError extends Error {}

/**
 * Settles with `promise` or rejects after `ms`. The original promise keeps running (a queued Redis command
 * cannot be recalled); its late rejection is swallowed so it never becomes an unhandled rejection.
 */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    // Rejects after the event loop's next I/O pass: an answer already waiting in a socket while the loop
    // was busy (a timer and the reply due in the same turn) still wins, so a claim that ran in time is not
    // answered 503 because this process was slow to read it.
    timer = setTimeout(() => setImmediate(() => reject(new TimeoutError(`${what} did not answer within ${ms} ms`))),
      ms)
  })
  promise.catch(() => {})
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}
