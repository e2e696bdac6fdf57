--[[
  Mirrors a campaign's settings from PostgreSQL into its Redis hash.

  KEYS[1] campaign hash
  ARGV[1] mode: 'create' (make the hash if missing) or 'update' (only touch an existing one)
  ARGV[2] name  ARGV[3] stock  ARGV[4] perUserLimit  ARGV[5] opensAtMs|''  ARGV[6] closesAtMs|''
  ARGV[7] holdSeconds|'' (a 201 is a hold confirmed within this many seconds; '' = final claims)
  ARGV[8] queue order 'fifo'|'shuffle'|'' (no waiting room)  ARGV[9] admitPerSecond  ARGV[10] admitSeconds
  ARGV[11] the draw's seed  ARGV[12] its SHA-256 (hex)   (issue 21; src/queue/)

  Returns {stock, issued, returned} as stored after the call, or {-1} when mode is 'update' and the hash is
  missing (live state lost: only reconcile may rebuild it, from the database's claims).
  Stock only ever grows here (max of stored and given), so two stock changes mirrored out of order
  cannot shrink it below what the database holds.
]]
local exists = redis.call('EXISTS', KEYS[1]) == 1
if not exists and ARGV[1] ~= 'create' then return {-1} end
local stock = tonumber(ARGV[3])
local current = tonumber(redis.call('HGET', KEYS[1], 'stock'))
if current and current > stock then stock = current end
redis.call('HSET', KEYS[1], 'name', ARGV[2], 'stock', stock, 'perUserLimit', ARGV[4],
  'opensAt', ARGV[5], 'closesAt', ARGV[6], 'holdSeconds', ARGV[7],
  'qOrder', ARGV[8] or '', 'qRate', ARGV[9] or '', 'qAdmitS', ARGV[10] or '', 'qSeed', ARGV[11] or '',
  'qSeedHash', ARGV[12] or '')
redis.call('HSETNX', KEYS[1], 'issued', 0)
redis.call('HSETNX', KEYS[1], 'returned', 0)
local counters = redis.call('HMGET', KEYS[1], 'issued', 'returned')
return {stock, tonumber(counters[1]), tonumber(counters[2])}
