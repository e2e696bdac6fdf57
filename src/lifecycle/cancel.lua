--[[
  Cancels one claim (the owner's DELETE, or an admin's revoke) and gives its unit back, atomically with
  the claim script. Constant work besides one plain find in the user's record.
  -- @include lifecycle/holds.lua

  KEYS[1] campaign hash  KEYS[2] users hash  KEYS[3] stream  KEYS[4] holds zset  KEYS[5] marks hash
  ARGV[1] campaignId  ARGV[2] userId (the claim's owner)  ARGV[3] claimId  ARGV[4] reason ('' for none)
  ARGV[5] '1': a fenced campaign is refused (automatic recovery on, src/recovery/; as claim.lua)

  Returns:
    1  cancelled now      {1, sequence, claimedAtMs, cancelledAtMs}
    0  already cancelled  {0, sequence, claimedAtMs, cancelledAtMs}  (a replay changes nothing)
   -1  unavailable        {-1}  (no live state)
   -2  not found          {-2}  (no such claim in this user's record)
   -3  ended              {-3}  (campaign closed, or ended by an archive)
   -4  hold expired       {-4}  (its unit went back already; expired here if it was due)
   -9  recovering         {-9}  (fenced: the live state may lack claims PostgreSQL holds, so "not found" could be false)
]]
local camp = campaign_read(KEYS[1])
if not camp.stock or not camp.issued then return {-1} end
if ARGV[5] == '1' and camp.node ~= node_run_id() then return {-9} end
local now = now_ms()
local campaignId, userId, claimId = ARGV[1], ARGV[2], ARGV[3]
local record = redis.call('HGET', KEYS[2], userId)
local c = rec_find(record, claimId)
if not c then return {-2} end
if c.mark == REC_MARK.cancelled then return {0, c.seq, c.at, mark_time(KEYS[5], claimId)} end
if camp.ended or (camp.closesAt and now >= camp.closesAt) then return {-3} end
if c.mark == REC_MARK.expired then return {-4} end
local holdUntil = nil
if c.mark == REC_MARK.hold or c.mark == REC_MARK.confirmed then holdUntil = c.at + (camp.holdSeconds or 0) * 1000 end
if c.mark == REC_MARK.hold and now >= holdUntil then
  expire_hold(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], campaignId, userId, record, c, holdUntil, now)
  return {-4}
end
if c.mark == REC_MARK.hold then hold_remove(KEYS[4], claimId, userId) end
redis.call('HSET', KEYS[2], userId, rec_mark(record, c, REC_MARK.cancelled, -1))
campaign_unit_returned(KEYS[1])
mark_set(KEYS[5], claimId, now)
stream_event(KEYS[3], 'cancel', campaignId, userId, c.seq, c.id, c.at, holdUntil, now, ARGV[4])
return {1, c.seq, c.at, now}
