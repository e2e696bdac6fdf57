--[[
  Gives users back the claims Redis lost (found in the database or the stream) and raises the issued
  counter over them, in one step: a claim that runs after this script sees the restored records (so the
  per-user limit holds) and the raised counter (so no sequence is handed out twice); one that runs
  before it saw neither. Records only grow and issued only rises.
  -- @include redis/campaign-hash.lua
  -- @include redis/users-record.lua

  KEYS[1] campaign hash
  KEYS[2] users hash        (userId -> the user's record: src/redis/users-record.lua)
  ARGV[1] highest sequence among the claims below
  ARGV[2..] pairs: userId, one record entry (users-record.ts userEntry)

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
  local claimId = rec_entry_claim(entry)
  if claimId and not rec_find(record, claimId) then
    if record == '' then record = entry else record = record .. ',' .. entry end
    records[userId] = record
    restored = restored + 1
  end
end

-- Written back in the current format, in sequence order (as claim.lua appends them).
for _, userId in ipairs(order) do
  local record = rec_normalise(records[userId])
  if record then redis.call('HSET', KEYS[2], userId, record) end
end

local issued = campaign_read(KEYS[1]).issued
if issued == nil then return {restored, -1} end
local top = tonumber(ARGV[1])
if top > issued then
  campaign_set_issued(KEYS[1], top)
  issued = top
end
return {restored, issued}
