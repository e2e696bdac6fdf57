--[[
  Ends a campaign before its live state is archived: afterwards claims answer CLOSED and cancels
  CAMPAIGN_ENDED, so nothing new reaches the stream while the archive checks that all is persisted.
  Needs record.lua's functions (prepended by the loader).

  KEYS[1] campaign hash  KEYS[2] holds zset
  ARGV[1] 'end' or 'reopen' (undo an end whose archive was refused)

  Returns for 'end':
    1  ended now          {1, issued, returned, endedAtMs}
    2  ended already      {2, issued, returned, endedAtMs}
   -1  unavailable        {-1}
   -2  holds still open   {-2, holds}
   -3  still running      {-3}  (neither closed nor sold out)
  For 'reopen': {1}.
]]
if ARGV[1] == 'reopen' then
  redis.call('HDEL', KEYS[1], 'ended')
  return {1}
end
local meta = redis.call('HMGET', KEYS[1], 'stock', 'issued', 'returned', 'closesAt', 'ended')
local stock, issued, returned = tonumber(meta[1]), tonumber(meta[2]), tonumber(meta[3]) or 0
if not stock or not issued then return {-1} end
if tonumber(meta[5]) then return {2, issued, returned, tonumber(meta[5])} end
local holds = redis.call('ZCARD', KEYS[2])
if holds > 0 then return {-2, holds} end
local now = now_ms()
local closesAt = tonumber(meta[4])
if not (closesAt and now >= closesAt) and issued - returned < stock then return {-3} end
redis.call('HSET', KEYS[1], 'ended', now)
return {1, issued, returned, now}
