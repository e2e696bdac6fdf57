--[[
  The public state of a campaign's waiting room, in one call (each API instance makes it at most once a
  second per campaign: src/queue/state-cache.ts). The seed is only returned from opensAt on.

  KEYS[1] campaign hash  KEYS[2] holds zset  KEYS[3] queue admits zset

  Returns {} when the campaign has no live state, else a flat [name, value, ...] list: stock issued returned
  opensAt closesAt ended qOrder qRate qAdmitS qLength qPre qServing qDrawn qAdmitted qExpired qReoffered
  qSoldOutAt qSeedHash, then seed (or ''), holdsOpen, pendingAdmits, now.
]]
local names = {'stock', 'issued', 'returned', 'opensAt', 'closesAt', 'ended', 'qOrder', 'qRate', 'qAdmitS',
  'qLength', 'qPre', 'qServing', 'qDrawn', 'qAdmitted', 'qExpired', 'qReoffered', 'qSoldOutAt', 'qSeedHash'}
local values = redis.call('HMGET', KEYS[1], unpack(names))
if not values[1] then return {} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
for i = 1, #names do
  out[#out + 1] = names[i]
  out[#out + 1] = values[i] or ''
end
local opensAt = tonumber(values[4])
local seed = ''
if not opensAt or now >= opensAt then seed = redis.call('HGET', KEYS[1], 'qSeed') or '' end
out[#out + 1] = 'seed'
out[#out + 1] = seed
out[#out + 1] = 'holdsOpen'
out[#out + 1] = redis.call('ZCARD', KEYS[2])
out[#out + 1] = 'pendingAdmits'
out[#out + 1] = redis.call('ZCARD', KEYS[3])
out[#out + 1] = 'now'
out[#out + 1] = now
return out
