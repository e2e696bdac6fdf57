--[[
  Advances a campaign's waiting room: expires due holds and admissions, then admits the next positions at
  admitPerSecond, never past the units that could still be sold (stock - (issued - returned), minus the
  admitted users who have not claimed yet). Every API instance runs it each QUEUE_TICK_MS: the admission
  budget comes from the time since the last advance (qTickAt, in the hash), so a second caller in the same
  instant finds nothing left to admit and instances never double-advance.
  -- @include lifecycle/holds.lua

  KEYS[1] campaign hash  KEYS[2] users hash  KEYS[3] stream  KEYS[4] holds zset  KEYS[5] marks hash
  KEYS[6] queue admits zset  KEYS[7] queue positions hash  KEYS[8] queue log list
  ARGV[1] campaignId  ARGV[2] at most this many admissions (and as many expiries) per call

  Campaign hash fields it keeps: qServing (servingUpTo), qAdmitted, qExpired, qReoffered, qTickAt, qSoldOutAt.
  Returns {code, admitted, expired, servingUpTo}: code 1 done, 0 not open yet, -1 no live state or no
  queue, -2 the draw is due (the caller draws, src/queue/draw.ts, and calls again), -3 closed.
]]
local camp = campaign_read(KEYS[1])
local stock, issued = camp.stock, camp.issued
if not stock or not issued or not camp.queue then return {-1, 0, 0, 0} end
-- The room's own fields: 1 qRate 2 qAdmitS 3 qLength 4 qPre 5 qServing 6 qDrawn 7 qTickAt.
local meta = redis.call('HMGET', KEYS[1], 'qRate', 'qAdmitS', 'qLength', 'qPre', 'qServing', 'qDrawn', 'qTickAt')
local now = now_ms()
local returned = camp.returned
local opensAt, closesAt, ended = camp.opensAt, camp.closesAt, camp.ended
local serving = tonumber(meta[5]) or 0
if ended or (closesAt and now >= closesAt) then return {-3, 0, 0, serving} end
if opensAt and now < opensAt then return {0, 0, 0, serving} end
if camp.queue == 'shuffle' and (tonumber(meta[4]) or 0) > 0 and not meta[6] then return {-2, 0, 0, serving} end
local max = tonumber(ARGV[2])

if camp.holdSeconds then
  returned = returned + expire_due(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], ARGV[1], now, max)
end

-- Admissions not used in time: the place goes to the next user (the room below grows by one each).
local due = redis.call('ZRANGEBYSCORE', KEYS[6], '-inf', now, 'LIMIT', 0, max)
for i = 1, #due do
  redis.call('ZREM', KEYS[6], due[i])
  redis.call('RPUSH', KEYS[8], 'x:' .. due[i] .. ':' .. now)
end
if #due > 0 then redis.call('HINCRBY', KEYS[1], 'qExpired', #due) end

local pending = redis.call('ZCARD', KEYS[6])
local room = stock - (issued - returned) - pending
local rate = tonumber(meta[1])
local tickAt = tonumber(meta[7]) or opensAt or now
-- At most one second of budget is banked (after an idle spell or a pause of the callers).
if tickAt < now - 1000 then tickAt = now - 1000 end
local budget = math.floor((now - tickAt) * rate / 1000)
local n = math.min(room, budget, (tonumber(meta[3]) or 0) - serving, max)
if n > 0 then
  -- Admissions beyond the fresh units nobody holds a place for are returned units offered again.
  local fresh = math.max(0, stock - issued - pending)
  local reoffered = n - math.min(n, fresh)
  local untilMs = now + tonumber(meta[2]) * 1000
  local CHUNK = 500
  for from = serving + 1, serving + n, CHUNK do
    local to = math.min(from + CHUNK - 1, serving + n)
    local zargs, fields = {}, {}
    for p = from, to do
      zargs[#zargs + 1] = untilMs
      zargs[#zargs + 1] = p
      fields[#fields + 1] = p
    end
    redis.call('ZADD', KEYS[6], unpack(zargs))
    local who = redis.call('HMGET', KEYS[7], unpack(fields))
    local log = {}
    for i = 1, #fields do
      local joinedAt = who[i] and string.match(who[i], '^(%d+):') or ''
      log[i] = 'a:' .. fields[i] .. ':' .. now .. ':' .. joinedAt
    end
    redis.call('RPUSH', KEYS[8], unpack(log))
  end
  serving = serving + n
  redis.call('HSET', KEYS[1], 'qServing', serving)
  redis.call('HINCRBY', KEYS[1], 'qAdmitted', n)
  if reoffered > 0 then redis.call('HINCRBY', KEYS[1], 'qReoffered', reoffered) end
  if n == budget then tickAt = tickAt + n * 1000 / rate else tickAt = now end
elseif budget > 0 then
  -- Nothing to admit: no budget is banked while the line or the stock holds it back.
  tickAt = now
end
redis.call('HSET', KEYS[1], 'qTickAt', string.format('%.3f', tickAt))
if stock - (issued - returned) <= 0 and redis.call('ZCARD', KEYS[4]) == 0 then
  redis.call('HSETNX', KEYS[1], 'qSoldOutAt', now)
end
return {1, math.max(n, 0), #due, serving}
