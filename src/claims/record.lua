--[[
  The users-record helpers and the unit-return step shared by claim.lua and the lifecycle scripts
  (src/lifecycle/*.lua). Prepended to each of them by src/redis/scripts.ts: Redis has no includes.

  Record (src/redis/codec.ts): "<count>;<seq>:<claimId>:<claimedAtMs>[:<mark>],..." in sequence order;
  count = the entries that hold a unit. Marks: none a final claim, h a hold, f a confirmed hold,
  c cancelled, x an expired hold (c and x hold no unit). Old records have no "count;" header.
  A hold expires at claimedAtMs + holdSeconds * 1000 (the campaign's; fixed at creation).
  When a mark was set (c, f, x) is in the marks hash (claimId -> ms), for replays.
  Holds zset member: claimId .. userId (a claimId is always 36 characters).
  Every lookup is a plain find of ":<claimId>:" (memchr/memcmp in C): no walk over the entries.
]]

-- The record's count and where its entries start (old records: counted once, from 1).
local function rec_count(record)
  if not record then return 0, 1 end
  local header = string.match(record, '^(%d+);')
  if header then return tonumber(header), #header + 2 end
  local _, commas = string.gsub(record, ',', '')
  return commas + 1, 1
end

-- claimId's entry in the record: {seq, id, at, mark, s, e} (s..e its bytes), or nil.
local function rec_find(record, claimId)
  if not record then return nil end
  local at = string.find(record, ':' .. claimId .. ':', 1, true)
  if not at then return nil end
  local s = at
  while s > 1 do
    local ch = string.byte(record, s - 1)
    if ch < 48 or ch > 57 then break end
    s = s - 1
  end
  local ms, mark = string.match(record, '^(%d+):?(%l?)', at + #claimId + 2)
  if not ms then return nil end
  local e = at + #claimId + 1 + #ms
  if mark ~= '' then e = e + 2 end
  return {seq = tonumber(string.sub(record, s, at - 1)), id = claimId, at = tonumber(ms), mark = mark, s = s, e = e}
end

-- Holds a unit: neither cancelled nor expired.
local function rec_active(c) return c.mark ~= 'c' and c.mark ~= 'x' end

-- The record with c's entry marked (mark '' for none) and its count moved by delta.
local function rec_mark(record, c, mark, delta)
  local count, from = rec_count(record)
  local entry = c.seq .. ':' .. c.id .. ':' .. c.at
  if mark ~= '' then entry = entry .. ':' .. mark end
  return (count + delta) .. ';' .. string.sub(record, from, c.s - 1) .. entry .. string.sub(record, c.e + 1)
end

-- Appends a lifecycle event carrying the whole claim, so the worker can apply it whichever arrives first.
-- type k cancelled, f confirmed, e expired: "seq:claimId:claimedAt:holdUntil|'':at:campaignId:userId".
local function lifecycle_event(stream, kind, campaignId, userId, c, holdUntil, at, reason)
  local v = c.seq .. ':' .. c.id .. ':' .. c.at .. ':' .. (holdUntil or '') .. ':' .. at .. ':' .. campaignId
    .. ':' .. userId
  if reason and reason ~= '' then
    redis.call('XADD', stream, '*', kind, v, 'r', reason)
  else
    redis.call('XADD', stream, '*', kind, v)
  end
end

-- Ends one hold as expired and gives its unit back (campaign 'returned' + 1).
local function expire_hold(campaign, users, stream, holds, marks, campaignId, userId, record, c, holdUntil, now)
  redis.call('HSET', users, userId, rec_mark(record, c, 'x', -1))
  redis.call('HINCRBY', campaign, 'returned', 1)
  redis.call('HSET', marks, c.id, now)
  redis.call('ZREM', holds, c.id .. userId)
  lifecycle_event(stream, 'e', campaignId, userId, c, holdUntil, now)
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
    if c and c.mark == 'h' then
      expire_hold(campaign, users, stream, holds, marks, campaignId, userId, record, c, tonumber(due[i + 1]), now)
      n = n + 1
    else
      redis.call('ZREM', holds, member)
    end
  end
  return n
end

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
