--[[
  Issues one claim, all or nothing. Every check runs before the first write: a Lua error part-way
  would not roll back what was already written.

  KEYS[1] campaign hash   (stock, perUserLimit, opensAt, closesAt, issued)
  KEYS[2] users hash      (userId -> "seq:claimId:claimedAtMs,...")
  KEYS[3] stream          (XADD target)
  KEYS[4] idempotency key (a key in the same slot; only read/written when ARGV[5] == '1')
  ARGV[1] claimId  ARGV[2] campaignId  ARGV[3] userId  ARGV[4] idempotency TTL (s)  ARGV[5] use idempotency

  Returns an array whose first element is the outcome:
    1  issued      {1, sequence, claimId, claimedAtMs}
    0  replay      {0, storedAnswer}        (Idempotency-Key seen before; storedAnswer is cjson of the first)
   -1  unavailable {-1}                     (no live state: Redis lost it; never rebuilt here)
   -2  not open    {-2, opensAtMs}
   -3  closed      {-3, closesAtMs}
   -4  at limit    {-4, seq1, seq2, ...}
   -5  sold out    {-5, stock}
]]
local useIdem = ARGV[5] == '1'
if useIdem then
  local stored = redis.call('GET', KEYS[4])
  if stored then return {0, stored} end
end

local meta = redis.call('HMGET', KEYS[1], 'stock', 'perUserLimit', 'opensAt', 'closesAt', 'issued')
local stock, limit, issued = tonumber(meta[1]), tonumber(meta[2]), tonumber(meta[5])
if not stock or not limit or not issued then return {-1} end

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local opensAt, closesAt = tonumber(meta[3]), tonumber(meta[4])
if opensAt and now < opensAt then return {-2, opensAt} end
if closesAt and now >= closesAt then return {-3, closesAt} end

local claimId, userId = ARGV[1], ARGV[3]
local record = redis.call('HGET', KEYS[2], userId)
local count = 0
local seqs = {}
if record then
  for seq, id, at in string.gmatch(record, '(%d+):([^:,]+):(%d+)') do
    -- A re-sent script (ioredis replays unanswered commands after a reconnect) finds its own claim.
    if id == claimId then return {1, tonumber(seq), id, tonumber(at)} end
    count = count + 1
    seqs[count] = tonumber(seq)
  end
end

local result
if count >= limit then
  result = {-4}
  for i = 1, count do result[i + 1] = seqs[i] end
elseif issued >= stock then
  result = {-5, stock}
else
  local seq = issued + 1
  redis.call('HSET', KEYS[1], 'issued', seq)
  local entry = seq .. ':' .. claimId .. ':' .. now
  if record then entry = record .. ',' .. entry end
  redis.call('HSET', KEYS[2], userId, entry)
  redis.call('XADD', KEYS[3], '*', 'claimId', claimId, 'campaignId', ARGV[2], 'userId', userId,
    'sequence', seq, 'claimedAt', now)
  result = {1, seq, claimId, now}
end

-- Only final answers are remembered: NOT_OPEN/CLOSED/unavailable must not stick for 24 h.
if useIdem then redis.call('SET', KEYS[4], cjson.encode(result), 'EX', tonumber(ARGV[4])) end
return result
