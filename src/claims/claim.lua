--[[
  Issues one claim, all or nothing, in the one Redis round trip of a claim request. Every check runs
  before the first write that matters: a Lua error part-way would not roll back what was written.
  Refusals do constant work whatever the user's history: the users record's count header is read with
  an anchored match, and the entries are never walked (only searched once, as plain bytes, for a
  re-sent script's own claim).
  -- @include lifecycle/holds.lua

  KEYS[1] campaign hash   (src/redis/campaign-hash.lua)
  KEYS[2] users hash      (userId -> the user's record: src/redis/users-record.lua)
  KEYS[3] stream          (XADD target: one claim entry, src/redis/stream-entry.lua)
  KEYS[4] idempotency key (a key in the same slot; only read/written when ARGV[5] == '1')
  KEYS[5] per-user request counter of this campaign (same slot; only used when ARGV[6] > 0)
  KEYS[6] holds zset      (claimId..userId -> expiresAtMs; only touched when the campaign has holdSeconds)
  KEYS[7] marks hash      (claimId -> ms of its mark; only written when a due hold expires here)
  KEYS[8] queue users     (waiting room, issue 21: userId -> "ticket:joinedAtMs:position"; only read when queued)
  KEYS[9] queue admits    (position -> admittedUntilMs of admitted users who have not claimed yet)
  ARGV[1] claimId  ARGV[2] campaignId  ARGV[3] userId  ARGV[4] idempotency TTL (s)  ARGV[5] use idempotency
  ARGV[6] requests allowed per user and window (0: no limit)  ARGV[7] window (ms)
  ARGV[8] deadline (epoch ms, the API's clock; 0: none): a script that starts later writes nothing
  ARGV[9] '1': fenced campaigns are refused (automatic recovery on, src/recovery/)

  A 503 is the truth (issue 19): the API answers 503 once its bound ends, but the command may still sit in a
  socket or a client queue (a frozen Redis, a reconnect, a failover) and run afterwards. The deadline is the
  request's arrival plus REDIS_COMMAND_TIMEOUT_MS minus the clock-skew margin (claim-script.ts), compared
  against Redis TIME: a script that starts after it answers {-8} and changes nothing, so the late run of a
  request already answered 503 issues nothing.

  Units (issue 12): see src/redis/campaign-hash.lua (issued, returned, stock).

  Steps, in this order (docs/api.md "How a claim works" lists the same; test/docs.test.ts checks both):
    1. live state  2. rate limit  3. idempotency  4. window  5. due holds  6. re-sent  7. per-user limit
    8. stock  9. issue

  Returns an array whose first element is the outcome:
    1  issued       {1, sequence, claimId, claimedAtMs, holdUntilMs or 0}
    0  replay       {0, storedAnswer}        (Idempotency-Key seen before; storedAnswer is cjson of the first)
   -1  unavailable  {-1}                     (no live state: Redis lost it; never rebuilt here)
   -2  not open     {-2, opensAtMs}
   -3  closed       {-3, closesAtMs}         (also once an archive has ended the campaign: its end time)
   -4  at limit     {-4, count, seq1, ...}   (count held; at most 10 sequences, the first active ones)
   -5  sold out     {-5, stock}
   -6  rate limited {-6, retryAfterMs}       (the request counted nothing else)
   -7  not admitted {-7, position or ''}     (a queued campaign: not, or no longer, admitted; never stored)
   -8  too late     {-8}                     (past ARGV[8]: nothing read as a decision, nothing written)
   -9  recovering   {-9}                     (ARGV[9] = '1' and the hash was not verified on this Redis process:
                                              a restart or failover may have lost claims; nothing written)
]]
local LISTED = 10
-- The at-limit listing reads at most this many entries, whatever cancellations left in the record.
local SCANNED = 64
-- Due holds a claim expires itself, on top of the worker's sweep.
local LAZY_EXPIRE = 20

-- First, before any write (the rate counter included). A late re-send of a script that did run before the
-- deadline (ioredis replays unanswered commands after a reconnect) still finds its own claim and answers it.
local deadline = tonumber(ARGV[8])
if deadline and deadline > 0 and now_ms() > deadline then
  local mine = redis.call('HGET', KEYS[2], ARGV[3])
  if mine and string.find(mine, ':' .. ARGV[1] .. ':', 1, true) then
    local c = rec_find(mine, ARGV[1])
    local hold = campaign_read(KEYS[1]).holdSeconds
    return {1, c.seq, ARGV[1], c.at, (c.mark == 'h' and hold and c.at + hold * 1000) or 0}
  end
  return {-8}
end

local camp = campaign_read(KEYS[1])
local stock, limit, issued = camp.stock, camp.perUserLimit, camp.issued
if not stock or not limit or not issued then
  -- The answer a client already got stays true without the live state: replay it rather than 503.
  if ARGV[5] == '1' then
    local stored = redis.call('GET', KEYS[4])
    if stored then return {0, stored} end
  end
  return {-1}
end
-- Part of step 1 (issue 19): live state last verified on another Redis process (restart, failover) may lack
-- claims PostgreSQL holds; issuing from its counter could hand their sequences out again.
if ARGV[9] == '1' and camp.node ~= node_run_id() then return {-9} end

-- Fixed window per (campaign, user), started by the user's first request, as @fastify/rate-limit counts.
-- After the campaign check, so that a request for an unknown campaign creates no key under its tag.
local rlMax = tonumber(ARGV[6])
if rlMax > 0 then
  local n = redis.call('INCR', KEYS[5])
  if n == 1 then redis.call('PEXPIRE', KEYS[5], ARGV[7]) end
  if n > rlMax then
    local ttl = redis.call('PTTL', KEYS[5])
    if ttl < 0 then
      -- A counter without expiry (never by this script) would refuse forever: give it its window.
      redis.call('PEXPIRE', KEYS[5], ARGV[7])
      ttl = tonumber(ARGV[7])
    end
    return {-6, ttl}
  end
end

local useIdem = ARGV[5] == '1'
if useIdem then
  local stored = redis.call('GET', KEYS[4])
  if stored then return {0, stored} end
end

local now = now_ms()
local opensAt, closesAt = camp.opensAt, camp.closesAt
local returned, holdSeconds, ended = camp.returned, camp.holdSeconds, camp.ended
if ended then return {-3, ended} end
if opensAt and now < opensAt then return {-2, opensAt} end
if closesAt and now >= closesAt then return {-3, closesAt} end

local claimId, userId = ARGV[1], ARGV[3]
-- A due hold's unit is back before this claim is judged (bounded: at most LAZY_EXPIRE holds).
if holdSeconds then
  returned = returned + expire_due(KEYS[1], KEYS[2], KEYS[3], KEYS[6], KEYS[7], ARGV[2], now, LAZY_EXPIRE)
end
local record = redis.call('HGET', KEYS[2], userId)
-- A re-sent script (ioredis replays unanswered commands after a reconnect) finds its own claim: one plain
-- find (memchr/memcmp in C, no captures) keeps this check cheap on a long record.
local mine = rec_find(record, claimId)
if mine then
  return {1, mine.seq, claimId, mine.at, (mine.mark == REC_MARK.hold and holdSeconds and mine.at + holdSeconds * 1000)
    or 0}
end
local count, from = 0, 1
if record then count, from = rec_count(record) end

-- Waiting room (issue 21): only an admitted user whose admission has not run out is issued a unit; the
-- admission is used up by the claim. Checked here so that a claim stays one round trip in one slot.
local queuePos, notAdmitted = nil, nil
if camp.queue and count < limit then
  local q = redis.call('HGET', KEYS[8], userId)
  queuePos = q and string.match(q, ':(%d+)$')
  local untilMs = queuePos and tonumber(redis.call('ZSCORE', KEYS[9], queuePos))
  if not untilMs or untilMs <= now then notAdmitted = queuePos or '' end
end

local result
if count >= limit then
  -- The first LISTED held sequences: the scan stops there, however long the record.
  result = {-4, count}
  for i, seq in ipairs(rec_held_sequences(record, from, LISTED, SCANNED)) do result[i + 2] = seq end
elseif notAdmitted then
  return {-7, notAdmitted}
elseif issued - returned >= stock then
  result = {-5, stock}
else
  local seq = issued + 1
  campaign_set_issued(KEYS[1], seq)
  if queuePos then redis.call('ZREM', KEYS[9], queuePos) end
  local holdUntil, mark = 0, REC_MARK.final
  if holdSeconds then
    holdUntil, mark = now + holdSeconds * 1000, REC_MARK.hold
    hold_add(KEYS[6], claimId, userId, holdUntil)
  end
  redis.call('HSET', KEYS[2], userId, rec_append(record, count, from, seq, claimId, now, mark))
  stream_claim(KEYS[3], seq, claimId, now, holdUntil, ARGV[2], userId)
  result = {1, seq, claimId, now, holdUntil}
end

-- Only final answers are remembered: NOT_OPEN/CLOSED/unavailable must not stick for 24 h.
if useIdem then redis.call('SET', KEYS[4], cjson.encode(result), 'EX', tonumber(ARGV[4])) end
return result
