--[[
  Confirms a hold before it expires, atomically with the sweep: whichever runs first wins, so a confirm
  at or after expiresAt always loses (and expires the hold itself if the sweep has not yet).
  -- @include lifecycle/holds.lua

  KEYS[1] campaign hash  KEYS[2] users hash  KEYS[3] stream  KEYS[4] holds zset  KEYS[5] marks hash
  ARGV[1] campaignId  ARGV[2] userId  ARGV[3] claimId
  ARGV[4] '1': a fenced campaign is refused (automatic recovery on, src/recovery/; as claim.lua)

  Returns:
    1  confirmed now      {1, sequence, claimedAtMs, confirmedAtMs}
    0  already confirmed  {0, sequence, claimedAtMs, confirmedAtMs}
   -1  unavailable {-1}   -2 not found {-2}   -4 hold expired {-4}   -5 cancelled {-5}
   -6  not a hold {-6}    (a final claim: nothing to confirm)
   -9  recovering {-9}    (fenced: the live state may lack claims PostgreSQL holds)
]]
local camp = campaign_read(KEYS[1])
if not camp.stock then return {-1} end
if ARGV[4] == '1' and camp.node ~= node_run_id() then return {-9} end
local now = now_ms()
local campaignId, userId, claimId = ARGV[1], ARGV[2], ARGV[3]
local record = redis.call('HGET', KEYS[2], userId)
local c = rec_find(record, claimId)
if not c then return {-2} end
if c.mark == REC_MARK.confirmed then return {0, c.seq, c.at, mark_time(KEYS[5], claimId)} end
if c.mark == REC_MARK.expired then return {-4} end
if c.mark == REC_MARK.cancelled then return {-5} end
if c.mark ~= REC_MARK.hold then return {-6} end
local holdUntil = c.at + (camp.holdSeconds or 0) * 1000
if now >= holdUntil then
  expire_hold(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], campaignId, userId, record, c, holdUntil, now)
  return {-4}
end
hold_remove(KEYS[4], claimId, userId)
redis.call('HSET', KEYS[2], userId, rec_mark(record, c, REC_MARK.confirmed, 0))
mark_set(KEYS[5], claimId, now)
stream_event(KEYS[3], 'confirm', campaignId, userId, c.seq, c.id, c.at, holdUntil, now)
return {1, c.seq, c.at, now}
