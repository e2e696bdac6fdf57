--[[
  Puts back on the stream claims that Redis issued but that neither the stream nor the database holds
  (LOST), with the same claimId, sequence, user and time, so the worker's insert stays idempotent.
  -- @include redis/users-record.lua
  -- @include redis/stream-entry.lua

  KEYS[1] users hash        (userId -> the user's record: src/redis/users-record.lua)
  KEYS[2] stream            (the campaign's partition stream: src/redis/stream-entry.lua)
  ARGV[1] campaignId
  ARGV[2..] quadruples: userId, claimId, sequence, claimedAtMs

  Returns the number of entries added. A claim is skipped unless the user's record still holds exactly
  that sequence, claim and time: the caller's view may be stale, and nothing is enqueued that Redis
  does not itself say it issued.
]]
local added = 0
for i = 2, #ARGV, 4 do
  local userId, claimId, seq, at = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  if rec_has_entry(redis.call('HGET', KEYS[1], userId), seq, claimId, at) then
    stream_claim(KEYS[2], seq, claimId, at, 0, ARGV[1], userId)
    added = added + 1
  end
end
return added
