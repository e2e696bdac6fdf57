--[[
  Confirms a hold before it expires, atomically with the sweep: whichever runs first wins, so a confirm
  at or after expiresAt always loses (and expires the hold itself if the sweep has not yet).
  Needs record.lua's functions (prepended by the loader).

  KEYS[1] campaign hash  KEYS[2] users hash  KEYS[3] stream  KEYS[4] holds zset  KEYS[5] marks hash
  ARGV[1] campaignId  ARGV[2] userId  ARGV[3] claimId

  Returns:
    1  confirmed now      {1, sequence, claimedAtMs, confirmedAtMs}
    0  already confirmed  {0, sequence, claimedAtMs, confirmedAtMs}
   -1  unavailable {-1}   -2 not found {-2}   -4 hold expired {-4}   -5 cancelled {-5}
   -6  not a hold {-6}    (a final claim: nothing to confirm)
]]
local meta = redis.call('HMGET', KEYS[1], 'stock', 'holdSeconds')
if not tonumber(meta[1]) then return {-1} end
local now = now_ms()
local campaignId, userId, claimId = ARGV[1], ARGV[2], ARGV[3]
local record = redis.call('HGET', KEYS[2], userId)
local c = rec_find(record, claimId)
if not c then return {-2} end
if c.mark == 'f' then return {0, c.seq, c.at, tonumber(redis.call('HGET', KEYS[5], claimId)) or 0} end
if c.mark == 'x' then return {-4} end
if c.mark == 'c' then return {-5} end
if c.mark ~= 'h' then return {-6} end
local holdUntil = c.at + (tonumber(meta[2]) or 0) * 1000
if now >= holdUntil then
  expire_hold(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], campaignId, userId, record, c, holdUntil, now)
  return {-4}
end
redis.call('ZREM', KEYS[4], claimId .. userId)
redis.call('HSET', KEYS[2], userId, rec_mark(record, c, 'f', 0))
redis.call('HSET', KEYS[5], claimId, now)
lifecycle_event(KEYS[3], 'f', campaignId, userId, c, holdUntil, now)
return {1, c.seq, c.at, now}
