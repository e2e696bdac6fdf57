--[[
  Gives users back the claims Redis lost (found in the database or the stream) and raises the issued
  counter over them, in one step: a claim that runs after this script sees the restored records (so the
  per-user limit holds) and the raised counter (so no sequence is handed out twice); one that runs
  before it saw neither. Records only grow and issued only rises.

  KEYS[1] campaign hash
  KEYS[2] users hash        (userId -> "count;seq:claimId:claimedAtMs[:mark],..."; old records lack "count;")
  ARGV[1] highest sequence among the claims below
  ARGV[2..] pairs: userId, "seq:claimId:claimedAtMs[:mark]"

  Returns {restored, issued}: restored = claims added to a record (already present ones are skipped);
  issued = the counter after the call, or -1 when the campaign hash is missing (then only the records
  are written and the claim route keeps answering 503 until live-state.lua creates the hash).
]]
local records = {}
local order = {}
local restored = 0
for i = 2, #ARGV, 2 do
  local userId, entry = ARGV[i], ARGV[i + 1]
  local record = records[userId]
  if record == nil then
    record = redis.call('HGET', KEYS[2], userId) or ''
    records[userId] = record
    order[#order + 1] = userId
  end
  local claimId = string.match(entry, '^%d+:([^:,]+):%d+:?%l?$')
  if claimId and not string.find(record, ':' .. claimId .. ':', 1, true) then
    if record == '' then record = entry else record = record .. ',' .. entry end
    records[userId] = record
    restored = restored + 1
  end
end

for _, userId in ipairs(order) do
  local parts = {}
  local record = records[userId]
  -- Written back in the current format (codec.ts): count header = entries holding a unit.
  local header = string.match(record, '^(%d+);')
  if header then record = string.sub(record, #header + 2) end
  local held = 0
  for entry in string.gmatch(record, '[^,]+') do
    local seq, mark = string.match(entry, '^(%d+):[^:]+:%d+:?(%l?)$')
    if seq then
      parts[#parts + 1] = {tonumber(seq), entry}
      -- Cancelled (c) and expired (x) claims stay listed but hold no unit.
      if mark ~= 'c' and mark ~= 'x' then held = held + 1 end
    end
  end
  -- Kept in sequence order, as claim.lua appends them.
  table.sort(parts, function(a, b) return a[1] < b[1] end)
  local out = {}
  for j, p in ipairs(parts) do out[j] = p[2] end
  if #out > 0 then redis.call('HSET', KEYS[2], userId, held .. ';' .. table.concat(out, ',')) end
end

local issued = tonumber(redis.call('HGET', KEYS[1], 'issued'))
if issued == nil then return {restored, -1} end
local top = tonumber(ARGV[1])
if top > issued then
  redis.call('HSET', KEYS[1], 'issued', top)
  issued = top
end
return {restored, issued}
