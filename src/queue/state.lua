--[[
  The public state of a campaign's waiting room, in one call (each API instance makes it at most once a
  second per campaign: src/queue/state-cache.ts). The seed is only returned from opensAt on.
  -- @include redis/campaign-hash.lua

  KEYS[1] campaign hash  KEYS[2] holds zset  KEYS[3] queue admits zset

  Returns {} when the campaign has no live state, else, in this order (src/queue/store.ts STATE_FIELDS):
  stock issued returned opensAt closesAt ended order, the room's fields (qRate qAdmitS qLength qPre qServing
  qDrawn qAdmitted qExpired qReoffered qSoldOutAt qSeedHash), seed (or ''), holdsOpen, pendingAdmits, now;
  '' for a missing value.
]]
local camp = campaign_read(KEYS[1])
if not camp.stock then return {} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {camp.stock, camp.issued or 0, camp.returned, camp.opensAt or '', camp.closesAt or '', camp.ended or '',
  camp.queue or ''}
local room = redis.call('HMGET', KEYS[1], 'qRate', 'qAdmitS', 'qLength', 'qPre', 'qServing', 'qDrawn', 'qAdmitted',
  'qExpired', 'qReoffered', 'qSoldOutAt', 'qSeedHash')
for i = 1, #room do out[#out + 1] = room[i] or '' end
local seed = ''
if not camp.opensAt or now >= camp.opensAt then seed = redis.call('HGET', KEYS[1], 'qSeed') or '' end
out[#out + 1] = seed
out[#out + 1] = redis.call('ZCARD', KEYS[2])
out[#out + 1] = redis.call('ZCARD', KEYS[3])
out[#out + 1] = now
return out
