--[[
  Puts back on the stream claims that Redis issued but that neither the stream nor the database holds
  (LOST), with the same claimId, sequence, user and time, so the worker's insert stays idempotent.

  KEYS[1] users hash        (userId -> "count;seq:claimId:claimedAtMs[:mark],..."; old records lack "count;")
  KEYS[2] stream            (the campaign's partition stream; entries in claim.lua's compact format)
  ARGV[1] campaignId
  ARGV[2..] quadruples: userId, claimId, sequence, claimedAtMs

  Returns the number of entries added. A claim is skipped unless the user's record still holds exactly
  that sequence, claim and time: the caller's view may be stale, and nothing is enqueued that Redis
  does not itself say it issued.
]]
local added = 0
for i = 2, #ARGV, 4 do
  local userId, claimId, seq, at = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local record = redis.call('HGET', KEYS[1], userId)
  -- The entry as a whole: after a ',' or the header's ';' (or at the start of an old record), and
  -- followed by ',', a mark or the end.
  local wrapped = record and (',' .. string.gsub(record, '^%d+;', '') .. ',')
  local found = wrapped and (string.find(wrapped, ',' .. seq .. ':' .. claimId .. ':' .. at .. ',', 1, true)
    or string.find(wrapped, ',' .. seq .. ':' .. claimId .. ':' .. at .. ':', 1, true))
  if found then
    redis.call('XADD', KEYS[2], '*', 'c', seq .. ':' .. claimId .. ':' .. at .. ':' .. ARGV[1] .. ':' .. userId)
    added = added + 1
  end
end
return added
