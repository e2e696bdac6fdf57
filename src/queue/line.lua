--[[
  Joins the waiting room (mode 'join') or only reads the user's place in it (mode 'me'), and says where the
  user stands, in one round trip. Every key is in the campaign's slot.

  KEYS[1] campaign hash  KEYS[2] queue users hash  KEYS[3] queue positions hash  KEYS[4] queue admits zset
  KEYS[5] users hash (claims)  KEYS[6] holds zset
  ARGV[1] mode: 'join' | 'me'  ARGV[2] userId  ARGV[3] ticket (join: kept only when the user is new)

  Queue users record: "<ticket>:<joinedAtMs>:<position>", position empty until the draw (shuffle pre-queue).
  Positions: a fifo campaign numbers every join in arrival order; a shuffle campaign numbers the pre-queue
  at the draw (src/queue/draw.ts) and each later join as qLength (the pre-queue's size is fixed by then).

  Returns {joined (1 now, 0 before), ticket, position or '' (hidden before opensAt), state,
           admittedUntilMs or '', servingUpTo, admitPerSecond}
    state: pre_queue | waiting | admitted | claimed | expired | sold_out
  or {-1} no live state, {-2} no queue, {-3, closedAtMs} closed or ended (join), {-4} not in line (me)
  -- @include redis/campaign-hash.lua
]]
local camp = campaign_read(KEYS[1])
local stock, issued = camp.stock, camp.issued
if not stock or not issued then return {-1} end
local order = camp.queue
if not order then return {-2} end
local room = redis.call('HMGET', KEYS[1], 'qServing', 'qRate')
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local opensAt, closesAt, ended = camp.opensAt, camp.closesAt, camp.ended
local closedAt = ended or ((closesAt and now >= closesAt) and closesAt) or nil
local before = opensAt and now < opensAt
local userId = ARGV[2]

local rec = redis.call('HGET', KEYS[2], userId)
local joined = 0
if not rec then
  if ARGV[1] ~= 'join' then return {-4} end
  if closedAt then return {-3, closedAt} end
  local length = redis.call('HINCRBY', KEYS[1], 'qLength', 1)
  if before then redis.call('HINCRBY', KEYS[1], 'qPre', 1) end
  local pos = ''
  if order == 'fifo' or not before then
    pos = tostring(length)
    redis.call('HSET', KEYS[3], pos, now .. ':' .. userId)
  end
  rec = ARGV[3] .. ':' .. now .. ':' .. pos
  redis.call('HSET', KEYS[2], userId, rec)
  joined = 1
end

local ticket, pos = string.match(rec, '^([^:]*):%d+:(%d*)$')
local serving, rate = tonumber(room[1]) or 0, tonumber(room[2])
if before or pos == '' then return {joined, ticket, '', 'pre_queue', '', serving, rate} end
local position = tonumber(pos)
if position <= serving then
  local untilMs = tonumber(redis.call('ZSCORE', KEYS[4], pos))
  if untilMs and untilMs > now and not closedAt then return {joined, ticket, pos, 'admitted', untilMs, serving, rate} end
  if redis.call('HEXISTS', KEYS[5], userId) == 1 then return {joined, ticket, pos, 'claimed', '', serving, rate} end
  return {joined, ticket, pos, 'expired', '', serving, rate}
end
local remaining = stock - (issued - camp.returned)
if closedAt or (remaining <= 0 and redis.call('ZCARD', KEYS[6]) == 0) then
  return {joined, ticket, pos, 'sold_out', '', serving, rate}
end
return {joined, ticket, pos, 'waiting', '', serving, rate}
