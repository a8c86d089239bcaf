-- restore_seats: put back what the durable record says counts against the seats, after
-- Redis lost it: borrowed seats and holds always (their tokens are out in the world,
-- valid offline, beyond anyone's reach), other sessions never beyond max seats.
-- KEYS[1..7] leases, holders, sessions, ended, gen, unverified, usage (see the prelude)
-- ARGV[1] now (ms)   ARGV[2] max seats   ARGV[3] lease ttl (ms) granted on restore
-- ARGV[4..] groups of 6, holds and borrows first, then sessions oldest first:
--   session id, uid, hardware id, acquired (ms), until (ms; 0: none), kind
--   kind 's': an active session; until = the end of its borrow, if borrowed
--   kind 'h': an ended borrow whose seat stays counted; until = when it stops
-- returns one outcome per entry, in order:
--   'restored' | 'held' (a hold put back) | 'known' (Redis has it) | 'superseded' (its
--   user + hardware holds another live lease) | 'evicted' (no seat left for it) |
--   'lapsed' (a hold already over)
local now, max_seats, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local outcomes = {}
for i = 4, #ARGV, 6 do
  local sid, uid, hw, acquired = ARGV[i], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3])
  local until_ms, kind = tonumber(ARGV[i + 4]), ARGV[i + 5]
  if kind == 'h' then
    local hold = 'hold:' .. sid
    if redis.call('HEXISTS', KEYS[3], hold) == 1 then
      outcomes[#outcomes + 1] = 'known'
    elseif until_ms <= now then
      outcomes[#outcomes + 1] = 'lapsed'
    else
      redis.call('ZADD', KEYS[1], until_ms, hold)
      redis.call('HSET', KEYS[3], hold, cjson.encode({u = uid, h = hw, a = acquired, b = acquired, e = until_ms,
                                                       o = until_ms, s = 'held'}))
      outcomes[#outcomes + 1] = 'held'
    end
  else
    local key = uid .. '\n' .. hw
    local held = redis.call('HGET', KEYS[2], key)
    local held_expiry = held and redis.call('ZSCORE', KEYS[1], held)
    local borrowed = until_ms > now
    if redis.call('HEXISTS', KEYS[3], sid) == 1 then
      outcomes[#outcomes + 1] = 'known'
    elseif held_expiry and tonumber(held_expiry) > now then
      outcomes[#outcomes + 1] = 'superseded'
    elseif not borrowed and live_count(KEYS, ARGV[1]) >= max_seats then
      outcomes[#outcomes + 1] = 'evicted'
    else
      -- A fresh lease: a client that is alive keeps its seat by heartbeating; a dead
      -- one loses it one ttl later, as if it had just heartbeated. A borrow keeps its end.
      local rec = {u = uid, h = hw, a = acquired, b = now, e = now + ttl, s = 'live'}
      if borrowed then
        rec.o = until_ms
        rec.e = math.max(rec.e, until_ms)
      end
      redis.call('ZADD', KEYS[1], rec.e, sid)
      redis.call('HSET', KEYS[2], key, sid)
      redis.call('HSET', KEYS[3], sid, cjson.encode(rec))
      outcomes[#outcomes + 1] = 'restored'
    end
  end
end
return outcomes
