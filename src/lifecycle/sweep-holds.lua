--[[
  Expires a campaign's due holds (the worker runs it every HOLD_SWEEP_MS for each campaign with holds;
  claim.lua does the same lazily). Every key is in the campaign's slot: on a cluster the call goes to
  the master of that slot.
  -- @include lifecycle/holds.lua

  KEYS[1] campaign hash  KEYS[2] users hash  KEYS[3] stream  KEYS[4] holds zset  KEYS[5] marks hash
  ARGV[1] campaignId  ARGV[2] at most this many holds per call

  Returns {expired, holdsLeft}; {-1, 0} when the campaign has no live state.
]]
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1, 0} end
local n = expire_due(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], ARGV[1], now_ms(), tonumber(ARGV[2]))
return {n, redis.call('ZCARD', KEYS[4])}
