--[[
  The recovery fence of one campaign (issue 19, src/recovery/recoverer.ts). A campaign is fenced while its
  hash's node field is not this Redis process's run_id (campaign-hash.lua): claim.lua refuses it. One
  instance at a time repairs it, under a lease in the campaign's slot; lifting the fence is writing the
  run_id, and only the lease holder does it.
  -- @include redis/campaign-hash.lua

  KEYS[1] campaign hash
  KEYS[2] lease key (a string: the holder's token, with a TTL)
  ARGV[1] mode: 'check' | 'acquire' | 'renew' | 'lift'   ARGV[2] token   ARGV[3] lease ms

  check:   {live, verified}: live 1 when the hash holds what claims need; verified 1 when it is not fenced
  acquire: {2} already verified (nothing to do), {1} lease taken, {0} another instance holds it
  renew:   {1} lease still ours (its TTL reset), {0} lost
  lift:    {1} fence lifted (run_id written, lease released), {0} lease not ours or no live state
]]
local mode, token = ARGV[1], ARGV[2]
local camp = campaign_read(KEYS[1])
local live = camp.stock ~= nil and camp.perUserLimit ~= nil and camp.issued ~= nil
local verified = live and camp.node == node_run_id()
if mode == 'check' then return {live and 1 or 0, verified and 1 or 0} end
if mode == 'acquire' then
  if verified then return {2} end
  if redis.call('SET', KEYS[2], token, 'NX', 'PX', ARGV[3]) then return {1} end
  return {0}
end
if redis.call('GET', KEYS[2]) ~= token then return {0} end
if mode == 'renew' then
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
  return {1}
end
-- lift
if not live then return {0} end
campaign_stamp(KEYS[1])
redis.call('UNLINK', KEYS[2])
return {1}
