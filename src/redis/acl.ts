/**
 * The least-privilege Redis ACL for every role (API, worker, reconcile, retry-failed): its keys, its one
 * pub/sub channel and exactly the commands the code and its Lua scripts run (ACL rules apply to the
 * commands a script calls too). docs/security.md prints aclRule('fcfs'); test/hardening-acl.test.ts runs
 * all roles as a user with this rule and asserts Redis denied nothing (ACL LOG stays empty).
 */
export const ACL_COMMANDS = [
  // connection set-up (ioredis: ready check, connection names) and probes; INFO also inside the scripts that
  // stamp or check a campaign's recovery fence (the Redis process's run_id, src/redis/campaign-hash.lua)
  'ping', 'info', 'client|setname', 'select', 'quit',
  // CLAIM_DURABILITY=replica: a marker (incr) and WAIT on a connection of its own per master (src/durability/)
  'wait',
  // the eviction policy check (leave out where CONFIG is not allowed; then set REDIS_EVICTION_POLICY_ACK)
  'config|get',
  // Lua scripts (ioredis: EVALSHA, EVAL on NOSCRIPT; readiness: SCRIPT EXISTS/LOAD)
  'evalsha', 'eval', 'script|load', 'script|exists',
  // campaign hash, users hash, idempotency and rate-limit keys (directly and inside the scripts)
  'exists', 'get', 'set', 'incr', 'pexpire', 'pttl', 'time',
  'hget', 'hmget', 'hset', 'hsetnx', 'hgetall', 'hlen', 'hscan',
  // streams: claims in, the worker's consumer group, reconcile's scan, metrics
  'xadd', 'xlen', 'xrange', 'xreadgroup', 'xack', 'xdel', 'xautoclaim', 'xpending',
  'xgroup|create', 'xgroup|delconsumer', 'xinfo|groups', 'xinfo|consumers',
  'multi', 'exec',
  // lifecycle (issue 12): returned-unit counter, end flag, holds sorted set, archive's removal of live state
  'hincrby', 'hdel', 'zadd', 'zrem', 'zrangebyscore', 'zcard', 'unlink',
  // waiting room (issue 21): admissions, draw list, admission log
  'zscore', 'hexists', 'rpush', 'lrange', 'llen',
  // campaign-changed events
  'publish', 'subscribe', 'unsubscribe',
] as const

/**
 * What ioredis' Cluster client adds on a Redis Cluster (REDIS_CLUSTER_NODES): the slots table and the ready
 * check, ASKING before a command redirected by ASK during a slot migration, and READONLY/READWRITE when a
 * connection's node changes role in a failover. Set the same user on every node (ACLs are per node).
 */
const CLUSTER_ACL_COMMANDS = ['cluster|slots', 'cluster|info', 'asking', 'readonly', 'readwrite'] as const

/** The ACL rule (ACL SETUSER <user> <rule>, or `user <user> <rule>` in an ACL file) for a KEY_PREFIX. */
export function aclRule(prefix: string, password = '<password>', opts: { cluster?: boolean } = {}): string {
  const commands = [...ACL_COMMANDS, ...(opts.cluster ? CLUSTER_ACL_COMMANDS : [])].map((c) => `+${c}`).join(' ')
  return `on >${password} resetkeys ~${prefix}:* resetchannels &${prefix}:events -@all ${commands}`
}
