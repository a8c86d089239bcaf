-- heartbeat_seat: extend the owner's live lease.
-- KEYS[1] leases  KEYS[2] holders  KEYS[3] sessions  KEYS[4] ended  KEYS[5] gen
-- ARGV[1] now (ms)   ARGV[2] lease ttl (ms)   ARGV[3] cached generation
-- ARGV[4] session id ARGV[5] caller uid       ARGV[6] '1' if the caller may act for others
-- returns {'OK', expires, hardware id, uid, acquired}
--       | {'UNKNOWN'}                 no record here (never issued, or already settled)
--       | {'FORBIDDEN'}               another user's session
--       | {'ENDED', state}            expired (now or earlier), released, ...
--       | {'STALE'}                   reload the license, retry
local now, ttl, sid = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[4]

local rec, refusal = owned_session(KEYS, sid, ARGV[5], ARGV[6])
if not rec then
  return refusal
end
if rec.s ~= 'live' then
  return {'ENDED', rec.s}
end
if rec.e <= now then
  -- Too late: the seat was already free for others at rec.e.
  end_session(KEYS, sid, rec, 'expired', rec.e)
  return {'ENDED', 'expired'}
end
if redis.call('GET', KEYS[5]) ~= ARGV[3] then
  return {'STALE'}
end
rec.b, rec.e = now, now + ttl
redis.call('ZADD', KEYS[1], rec.e, sid)
redis.call('HSET', KEYS[3], sid, cjson.encode(rec))
return {'OK', rec.e, rec.h, rec.u, rec.a}
