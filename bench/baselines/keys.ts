/**
 * Redis keys of the bench baselines. They are not the service's keys (src/redis/keys.ts builds those);
 * they live under the bench run's private prefix and share one hash tag per campaign, like the service's.
 */
export function baselineKeys(prefix: string, id: string) {
  const tag = `${prefix}:baseline:{${id}}`
  return {
    /** Hash: stock, issued (redis-lock). */
    state: `${tag}:state`,
    /** String: the lock token (redis-lock). */
    lock: `${tag}:lock`,
    /** String: stock (two-step). */
    stock: `${tag}:stock`,
    /** String: INCR counter (two-step). */
    counter: `${tag}:counter`,
    /** Set: users that claimed. */
    users: `${tag}:users`,
    /** List of "user:sequence" for every claim answered 201: what the correctness check reads. */
    issued: `${tag}:issued`,
  }
}

export const idCounterKey = (prefix: string) => `${prefix}:baseline:next-id`
