--[[
  Writes one batch of the draw: the shuffle pre-queue's positions, in the order src/queue/draw.ts computed
  from the seed (sha256 of "<seed>:<ticket>", ascending). Batches come in order; a batch whose first
  position does not follow the draw list's end (another instance drew meanwhile) writes nothing.

  KEYS[1] campaign hash  KEYS[2] queue users hash  KEYS[3] queue positions hash  KEYS[4] draw list
  ARGV[1] first position of this batch  ARGV[2] '1' on the last batch  ARGV[3..] userId, ticket pairs

  Returns {written, drawn (1 once the draw is complete)}, {-1, 0} when the batch is out of turn.
]]
if redis.call('HEXISTS', KEYS[1], 'qDrawn') == 1 then return {0, 1} end
local first = tonumber(ARGV[1])
if first == 1 then redis.call('UNLINK', KEYS[4]) end
if redis.call('LLEN', KEYS[4]) ~= first - 1 then return {-1, 0} end
local written = 0
for i = 3, #ARGV, 2 do
  local userId, ticket = ARGV[i], ARGV[i + 1]
  local pos = first + (i - 3) / 2
  local rec = redis.call('HGET', KEYS[2], userId)
  local t, joinedAt = string.match(rec or '', '^([^:]*):(%d+):')
  if t ~= ticket then return redis.error_reply('draw: ticket of user ' .. userId .. ' does not match') end
  redis.call('HSET', KEYS[2], userId, ticket .. ':' .. joinedAt .. ':' .. pos)
  redis.call('HSET', KEYS[3], pos, joinedAt .. ':' .. userId)
  redis.call('RPUSH', KEYS[4], ticket)
  written = written + 1
end
if ARGV[2] == '1' then
  local t = redis.call('TIME')
  redis.call('HSET', KEYS[1], 'qDrawn', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
  return {written, 1}
end
return {written, 0}
