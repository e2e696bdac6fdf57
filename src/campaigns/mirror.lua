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
  -- @include redis/campaign-hash.lua
]]
local exists = redis.call('EXISTS', KEYS[1]) == 1
if not exists and ARGV[1] ~= 'create' then return {-1} end
local stock = tonumber(ARGV[3])
local current = campaign_read(KEYS[1])
if current.stock and current.stock > stock then stock = current.stock end
campaign_write_settings(KEYS[1], ARGV[2], stock, ARGV[4], ARGV[5], ARGV[6], ARGV[7])
campaign_write_queue(KEYS[1], ARGV[8], ARGV[9], ARGV[10], ARGV[11], ARGV[12])
campaign_init_counters(KEYS[1], 0, 0)
-- A new campaign's state is whole on this node; an existing hash keeps its stamp (a fenced one stays fenced).
if not exists then campaign_stamp(KEYS[1]) end
local after = campaign_read(KEYS[1])
return {stock, after.issued, after.returned}
