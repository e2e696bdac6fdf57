--[[
  Puts back on the stream claims that Redis issued but that neither the stream nor the database holds
  (LOST), with the same claimId, sequence, user and time, so the worker's insert stays idempotent.

  KEYS[1] users hash        (userId -> "seq:claimId:claimedAtMs,...")
  KEYS[2] stream            (the campaign's partition stream)
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
  if record and string.find(',' .. record .. ',', ',' .. seq .. ':' .. claimId .. ':' .. at .. ',', 1, true) then
    redis.call('XADD', KEYS[2], '*', 'claimId', claimId, 'campaignId', ARGV[1], 'userId', userId,
      'sequence', seq, 'claimedAt', at)
    added = added + 1
  end
end
return added
