--[[
  Releases a lock only if this holder still owns it (compare-and-delete): a holder whose lock expired
  must not delete the next holder's lock.

  KEYS[1] lock key
  ARGV[1] the holder's token
  Returns 1 when released, 0 when the lock was no longer this holder's.
]]
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
