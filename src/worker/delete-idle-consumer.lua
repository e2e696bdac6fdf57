--[[
  Removes a consumer from a group only if it holds no pending entries and has been idle long enough.
  Atomic on purpose: XINFO then XGROUP DELCONSUMER from a client could delete a consumer that read
  entries in between, and DELCONSUMER drops a consumer's pending entries with it.

  KEYS[1] stream
  ARGV[1] group  ARGV[2] consumer  ARGV[3] minimum idle time (ms)

  Returns 1 if the consumer was deleted, 0 if it was kept (busy, recently active, or already gone).
]]
local consumers = redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])
for _, c in ipairs(consumers) do
  local info = {}
  for i = 1, #c, 2 do info[c[i]] = c[i + 1] end
  if info['name'] == ARGV[2] then
    if tonumber(info['pending']) == 0 and tonumber(info['idle']) >= tonumber(ARGV[3]) then
      redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
      return 1
    end
    return 0
  end
end
return 0
