--[[
  Ends a campaign before its live state is archived: afterwards claims answer CLOSED and cancels
  CAMPAIGN_ENDED, so nothing new reaches the stream while the archive checks that all is persisted.
  -- @include redis/clock.lua
  -- @include redis/campaign-hash.lua

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
  campaign_reopen(KEYS[1])
  return {1}
end
local camp = campaign_read(KEYS[1])
local stock, issued, returned = camp.stock, camp.issued, camp.returned
if not stock or not issued then return {-1} end
if camp.ended then return {2, issued, returned, camp.ended} end
local holds = redis.call('ZCARD', KEYS[2])
if holds > 0 then return {-2, holds} end
local now = now_ms()
local closesAt = camp.closesAt
if not (closesAt and now >= closesAt) and issued - returned < stock then return {-3} end
campaign_end(KEYS[1], now)
return {1, issued, returned, now}
