-- sweep_license: one license's share of a sweep.
-- KEYS[1..11] leases, holders, sessions, ended, gen, unverified, usage, origin, classes,
-- queue, tickets (see the prelude)
-- ARGV[1] now (ms)   ARGV[2] batch size
-- ARGV[3] settle ends up to (ms): ends after this stay in the outbox (revive window)
-- ARGV[4] verify leases acquired before (ms): older live leases not yet checked
--         against their durable record are returned for the sweep to check
-- returns {expired now, live count, outbox left after this batch,
--          {sid, record JSON, ...} ends to settle (<= batch),
--          {sid, record JSON, ...} live leases to verify (<= batch)}
--       | {'REBUILD'}   nothing expires from a table that may lack extensions: rebuild it first
local now, batch = tonumber(ARGV[1]), tonumber(ARGV[2])
if needs_rebuild(KEYS) then
  return {'REBUILD'}
end
local settle_until, verify_before = tonumber(ARGV[3]), tonumber(ARGV[4])

local expired = expire_due(KEYS, ARGV[1], batch)

local ends = {}
local due = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', settle_until, 'LIMIT', 0, batch)
for _, sid in ipairs(due) do
  local raw = just_ended[sid] or redis.call('HGET', KEYS[3], sid)
  if raw then
    ends[#ends + 1] = sid
    ends[#ends + 1] = raw
  else
    redis.call('ZREM', KEYS[4], sid)  -- a record already forgotten: nothing to settle
  end
end

local unverified = {}
local young = redis.call('ZRANGEBYSCORE', KEYS[6], '-inf', '(' .. ARGV[4], 'LIMIT', 0, batch)
for _, sid in ipairs(young) do
  local raw = redis.call('HGET', KEYS[3], sid)
  if raw then
    unverified[#unverified + 1] = sid
    unverified[#unverified + 1] = raw
  else
    redis.call('ZREM', KEYS[6], sid)
  end
end

return {expired, live_count(KEYS, ARGV[1]), redis.call('ZCARD', KEYS[4]) - #ends / 2, ends, unverified}
