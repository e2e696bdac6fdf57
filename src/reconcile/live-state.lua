--[[
  Rebuilds a campaign's live state from the database, or repairs the counters and settings of an
  existing one, in one step.

  KEYS[1] campaign hash     (src/redis/campaign-hash.lua)
  ARGV[1] '1' to create the hash when it is missing, '0' to leave a missing hash alone
  ARGV[2] name  ARGV[3] stock  ARGV[4] perUserLimit  ARGV[5] opensAtMs|''  ARGV[6] closesAtMs|''
  ARGV[7] lowest acceptable issued: the highest sequence known to be handed out
  ARGV[8] holdSeconds|''
  ARGV[9] returned to write when creating: units PostgreSQL knows were given back (cancelled or expired
          rows). Never more than really came back, so a rebuilt campaign can undersell, never oversell.
          An existing hash keeps its own count.
  ARGV[10..14] the waiting room's settings, as mirror.lua's ARGV[8..12] ('' each without a queue): a rebuilt
          hash keeps its campaign's admission check (claim.lua admits nobody the room has not admitted)
  ARGV[15] '0': a created hash is left unstamped (still fenced: the automatic recovery lifts the fence itself
          once no late row can land above issued); '1': stamped, verified on this node (reconcile --fix)

  Returns {created, stock, issued} (created 1 when this call made the hash), or {-1} when the hash is
  missing and ARGV[1] is '0'.

  Creating writes every field in one HSET with issued already at the highest known sequence: a claim
  that runs before it gets 503 (claim.lua needs stock, perUserLimit and issued), one that runs after it
  continues at issued + 1. Stock and issued only grow (max of stored and given): an issued counter is
  never lowered, and a stock raised by a mirror that raced with this script is kept.
  -- @include redis/campaign-hash.lua
]]
local exists = redis.call('EXISTS', KEYS[1]) == 1
if not exists and ARGV[1] ~= '1' then return {-1} end
local stock, issued = tonumber(ARGV[3]), tonumber(ARGV[7])
local current = campaign_read(KEYS[1])
if current.stock and current.stock > stock then stock = current.stock end
if current.issued and current.issued > issued then issued = current.issued end
campaign_write_settings(KEYS[1], ARGV[2], stock, ARGV[4], ARGV[5], ARGV[6], ARGV[8])
campaign_write_queue(KEYS[1], ARGV[10], ARGV[11], ARGV[12], ARGV[13], ARGV[14])
campaign_set_issued(KEYS[1], issued)
campaign_init_counters(KEYS[1], issued, tonumber(ARGV[9]) or 0)
-- Rebuilt from the database on this node: whole here (an existing hash keeps its stamp: src/recovery/).
if not exists and ARGV[15] ~= '0' then campaign_stamp(KEYS[1]) end
if exists then return {0, stock, issued} end
return {1, stock, issued}
