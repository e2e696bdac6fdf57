--[[
  The users record, Lua side (the TypeScript side is users-record.ts next to this file; both describe
  the same format, and nothing else knows it). Included by every script that reads or writes the users
  hash (-- @include in the script's header; src/redis/scripts.ts prepends it: Redis has no includes).

  Record (users hash, field = userId): "<count>;<seq>:<claimId>:<claimedAtMs>[:<mark>],..." in sequence
  order; count = the entries that hold a unit, read with one anchored match (O(1), never a walk). Marks
  (REC_MARK): none a final claim, h a hold, f a confirmed hold, c cancelled, x an expired hold (c and x
  hold no unit). Old records have no "count;" header: counted once here, rewritten with one on the next write.
  Every lookup is a plain find of ":<claimId>:" (memchr/memcmp in C): no walk over the entries.
]]

local REC_MARK = {final = '', hold = 'h', confirmed = 'f', cancelled = 'c', expired = 'x'}

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
local function rec_holds_unit(mark) return mark ~= REC_MARK.cancelled and mark ~= REC_MARK.expired end
local function rec_active(c) return rec_holds_unit(c.mark) end

-- One entry, "seq:claimId:claimedAtMs[:mark]".
local function rec_entry(seq, claimId, at, mark)
  local entry = seq .. ':' .. claimId .. ':' .. at
  if mark and mark ~= '' then entry = entry .. ':' .. mark end
  return entry
end

-- The record with c's entry marked (REC_MARK.final for none) and its count moved by delta.
local function rec_mark(record, c, mark, delta)
  local count, from = rec_count(record)
  return (count + delta) .. ';' .. string.sub(record, from, c.s - 1) .. rec_entry(c.seq, c.id, c.at, mark)
    .. string.sub(record, c.e + 1)
end

-- The record with a new entry (holding a unit) appended: count and from as rec_count gave them.
local function rec_append(record, count, from, seq, claimId, at, mark)
  local entry = rec_entry(seq, claimId, at, mark)
  if record and from <= #record then entry = string.sub(record, from) .. ',' .. entry end
  return (count + 1) .. ';' .. entry
end

-- The first max sequences that hold a unit, reading at most scanned entries (whatever cancellations left).
local function rec_held_sequences(record, from, max, scanned)
  local out, pos, read = {}, from, 0
  while record and #out < max and read < scanned do
    local s, e, seq, mark = string.find(record, '^(%d+):[^:,]+:%d+:?(%l?)', pos)
    if not s then break end
    read = read + 1
    if rec_holds_unit(mark) then out[#out + 1] = tonumber(seq) end
    pos = e + 2
  end
  return out
end

-- True when the record holds exactly this entry (sequence, claim and time; any mark).
local function rec_has_entry(record, seq, claimId, at)
  if not record then return false end
  local wrapped = ',' .. string.gsub(record, '^%d+;', '') .. ','
  local prefix = ',' .. rec_entry(seq, claimId, at)
  return string.find(wrapped, prefix .. ',', 1, true) ~= nil or string.find(wrapped, prefix .. ':', 1, true) ~= nil
end

-- The claimId of a well-formed entry string, or nil.
local function rec_entry_claim(entry) return string.match(entry, '^%d+:([^:,]+):%d+:?%l?$') end

-- The record rebuilt from its entries in the current format: sequence order, count = entries holding a
-- unit (malformed parts dropped). nil when no entry is left.
local function rec_normalise(record)
  local _, from = rec_count(record)
  local parts, held = {}, 0
  for entry in string.gmatch(string.sub(record, from), '[^,]+') do
    local seq, mark = string.match(entry, '^(%d+):[^:]+:%d+:?(%l?)$')
    if seq then
      parts[#parts + 1] = {tonumber(seq), entry}
      if rec_holds_unit(mark) then held = held + 1 end
    end
  end
  if #parts == 0 then return nil end
  table.sort(parts, function(a, b) return a[1] < b[1] end)
  local out = {}
  for j, p in ipairs(parts) do out[j] = p[2] end
  return held .. ';' .. table.concat(out, ',')
end
