-- Redis's own clock (ms): the same clock for every instance, and the one that makes stream ids.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
