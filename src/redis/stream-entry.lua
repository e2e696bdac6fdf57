--[[
  The stream entry, Lua side (the TypeScript side, with the layouts, is stream-entry.ts next to this
  file; nothing else knows the entry types or separators). Included by every script that XADDs.
  userId comes last in every value: it is the only free-text part (it may contain ':' and ',').
]]

local STREAM_EVENT_TYPE = {cancel = 'k', confirm = 'f', expire = 'e'}

-- A claim issued: type "h" for a hold (holdUntil > 0), "c" for a final claim.
local function stream_claim(stream, seq, claimId, at, holdUntil, campaignId, userId)
  if holdUntil and holdUntil > 0 then
    redis.call('XADD', stream, '*', 'h', seq .. ':' .. claimId .. ':' .. at .. ':' .. holdUntil .. ':' .. campaignId
      .. ':' .. userId)
  else
    redis.call('XADD', stream, '*', 'c', seq .. ':' .. claimId .. ':' .. at .. ':' .. campaignId .. ':' .. userId)
  end
end

-- A lifecycle event ('cancel', 'confirm' or 'expire') carrying the whole claim, so the worker can write
-- the row from whichever entry reaches it first; a cancellation may carry its reason.
local function stream_event(stream, kind, campaignId, userId, seq, claimId, claimedAt, holdUntil, at, reason)
  local v = seq .. ':' .. claimId .. ':' .. claimedAt .. ':' .. (holdUntil or '') .. ':' .. at .. ':' .. campaignId
    .. ':' .. userId
  if reason and reason ~= '' then
    redis.call('XADD', stream, '*', STREAM_EVENT_TYPE[kind], v, 'r', reason)
  else
    redis.call('XADD', stream, '*', STREAM_EVENT_TYPE[kind], v)
  end
end
