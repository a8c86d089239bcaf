-- restore_seats: put sessions the durable record says are active back after Redis lost
-- them, never beyond max seats.
-- KEYS[1..7] leases, holders, sessions, ended, gen, unverified, usage (see the prelude)
-- ARGV[1] now (ms)   ARGV[2] max seats   ARGV[3] lease ttl (ms) granted on restore
-- ARGV[4..] groups of 4: session id, uid, hardware id, acquired (ms) - oldest first
-- returns one outcome per session, in order:
--   'restored' | 'known' (Redis has it) | 'superseded' (its user + hardware holds
--   another live lease) | 'evicted' (no seat left for it)
local now, max_seats, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local outcomes = {}
for i = 4, #ARGV, 4 do
  local sid, uid, hw, acquired = ARGV[i], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3])
  local key = uid .. '\n' .. hw
  local held = redis.call('HGET', KEYS[2], key)
  local held_expiry = held and redis.call('ZSCORE', KEYS[1], held)
  if redis.call('HEXISTS', KEYS[3], sid) == 1 then
    outcomes[#outcomes + 1] = 'known'
  elseif held_expiry and tonumber(held_expiry) > now then
    outcomes[#outcomes + 1] = 'superseded'
  elseif live_count(KEYS, ARGV[1]) >= max_seats then
    outcomes[#outcomes + 1] = 'evicted'
  else
    -- A fresh lease: a client that is alive keeps its seat by heartbeating; a dead
    -- one loses it one ttl later, as if it had just heartbeated.
    local rec = {u = uid, h = hw, a = acquired, b = now, e = now + ttl, s = 'live'}
    redis.call('ZADD', KEYS[1], rec.e, sid)
    redis.call('HSET', KEYS[2], key, sid)
    redis.call('HSET', KEYS[3], sid, cjson.encode(rec))
    outcomes[#outcomes + 1] = 'restored'
  end
end
return outcomes
