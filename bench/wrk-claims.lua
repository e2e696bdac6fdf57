--[[
  wrk script: a new user on every request through the trusted user header (wrk cannot sign a JWT per
  request), so the API runs the issue path, not the at-limit refusal. Reads WRK_USER_HEADER and
  WRK_USER_PREFIX from the environment; done() prints one line "WRK_JSON {...}" for bench/wrk.ts.
]]
local header = os.getenv('WRK_USER_HEADER')
local prefix = os.getenv('WRK_USER_PREFIX')
local threads = 0
local counter = 0

function setup(thread)
  thread:set('tid', threads)
  threads = threads + 1
end

function request()
  counter = counter + 1
  return wrk.format('POST', nil, { [header] = prefix .. tid .. '-' .. counter }, nil)
end

function done(summary, latency)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"durationUs":%d,"p50Us":%d,"p95Us":%d,"p99Us":%d,"maxUs":%d,' ..
    '"errors":%d,"non2xx":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), latency.max, e.connect + e.read + e.write + e.timeout, e.status))
end
