--[[
  Holds and marks (issue 12), shared by claim.lua and the lifecycle scripts.
  -- @include redis/clock.lua
  -- @include redis/campaign-hash.lua
  -- @include redis/users-record.lua
  -- @include redis/stream-entry.lua

  Holds zset: member claimId .. userId (a claimId is always 36 characters), score the hold's expiry (ms);
  a hold expires at claimedAtMs + holdSeconds * 1000 (the campaign's, fixed at creation).
  Marks hash: claimId -> ms its mark (c, f, x) was set, for replays.
]]

local function hold_add(holds, claimId, userId, holdUntil) redis.call('ZADD', holds, holdUntil, claimId .. userId) end
local function hold_remove(holds, claimId, userId) redis.call('ZREM', holds, claimId .. userId) end
local function mark_set(marks, claimId, now) redis.call('HSET', marks, claimId, now) end
local function mark_time(marks, claimId) return tonumber(redis.call('HGET', marks, claimId)) or 0 end

-- Ends one hold as expired and gives its unit back to the campaign.
local function expire_hold(campaign, users, stream, holds, marks, campaignId, userId, record, c, holdUntil, now)
  redis.call('HSET', users, userId, rec_mark(record, c, REC_MARK.expired, -1))
  campaign_unit_returned(campaign)
  mark_set(marks, c.id, now)
  hold_remove(holds, c.id, userId)
  stream_event(stream, 'expire', campaignId, userId, c.seq, c.id, c.at, holdUntil, now)
end

-- Expires up to max holds whose time has come; returns how many units came back.
local function expire_due(campaign, users, stream, holds, marks, campaignId, now, max)
  local due = redis.call('ZRANGEBYSCORE', holds, '-inf', now, 'WITHSCORES', 'LIMIT', 0, max)
  local n = 0
  for i = 1, #due, 2 do
    local member = due[i]
    local claimId, userId = string.sub(member, 1, 36), string.sub(member, 37)
    local record = redis.call('HGET', users, userId)
    local c = rec_find(record, claimId)
    if c and c.mark == REC_MARK.hold then
      expire_hold(campaign, users, stream, holds, marks, campaignId, userId, record, c, tonumber(due[i + 1]), now)
      n = n + 1
    else
      redis.call('ZREM', holds, member)
    end
  end
  return n
end
