--[[
  The campaign hash, Lua side (the TypeScript side is campaign-hash.ts next to this file; nothing else
  knows its field names). Included by every script that reads or writes it (-- @include in the header).

  Fields: name, stock, perUserLimit, opensAt, closesAt (ms or ''), holdSeconds (or ''), issued (sequences
  handed out), returned (units given back by cancellations and expired holds), ended (ms, set before an
  archive). A claim needs issued - returned < stock and takes sequence issued + 1, so sequences stay unique
  and increasing while returned units are issued again.
  node (issue 19): the run_id of the Redis process on which this live state was created or last checked
  against PostgreSQL (src/recovery/). A restart or a failover changes the serving process's run_id, so a
  hash whose node differs may have lost acknowledged writes: claim.lua refuses it (RECOVERING) until the
  recovery has repaired it and written the new run_id.
]]

-- This Redis process's run_id: new at every start, and another process's after a failover.
local function node_run_id() return string.match(redis.call('INFO', 'server'), 'run_id:(%x+)') end
local function campaign_stamp(key) redis.call('HSET', key, 'node', node_run_id()) end

-- Every field a script decides on, as numbers (nil when missing or ''); returned defaults to 0.
local function campaign_read(key)
  local v = redis.call('HMGET', key, 'stock', 'perUserLimit', 'opensAt', 'closesAt', 'issued', 'returned',
    'holdSeconds', 'ended', 'qOrder', 'node')
  return {queue = (v[9] and v[9] ~= '') and v[9] or nil, stock = tonumber(v[1]), perUserLimit = tonumber(v[2]), opensAt = tonumber(v[3]), closesAt = tonumber(v[4]),
    issued = tonumber(v[5]), returned = tonumber(v[6]) or 0, holdSeconds = tonumber(v[7]), ended = tonumber(v[8]),
    node = v[10]}
end

-- The settings mirrored from PostgreSQL (windows and holdSeconds as stored: ms or '').
local function campaign_write_settings(key, name, stock, perUserLimit, opensAt, closesAt, holdSeconds)
  redis.call('HSET', key, 'name', name, 'stock', stock, 'perUserLimit', perUserLimit, 'opensAt', opensAt,
    'closesAt', closesAt, 'holdSeconds', holdSeconds)
end

-- A waiting room's settings (issue 21, src/queue/): order 'fifo'|'shuffle' or '' (none), admissions per
-- second, seconds to claim once admitted, the draw's seed and its SHA-256. The room's own counters (qLength,
-- qServing, ...) are kept by src/queue/*.lua, which lists them.
local function campaign_write_queue(key, order, rate, admitSeconds, seed, seedHash)
  redis.call('HSET', key, 'qOrder', order or '', 'qRate', rate or '', 'qAdmitS', admitSeconds or '', 'qSeed',
    seed or '', 'qSeedHash', seedHash or '')
end

-- Counters a new hash starts with; an existing hash keeps its own.
local function campaign_init_counters(key, issued, returned)
  redis.call('HSETNX', key, 'issued', issued)
  redis.call('HSETNX', key, 'returned', returned)
end

local function campaign_set_issued(key, issued) redis.call('HSET', key, 'issued', issued) end
local function campaign_unit_returned(key) redis.call('HINCRBY', key, 'returned', 1) end
local function campaign_end(key, now) redis.call('HSET', key, 'ended', now) end
local function campaign_reopen(key) redis.call('HDEL', key, 'ended') end
