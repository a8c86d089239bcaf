-- release_seat: end a live lease now (owner, admin, or a rolled-back grant).
-- KEYS[1..7] leases, holders, sessions, ended, gen, unverified, usage (see the prelude)
-- ARGV[1] now (ms)  ARGV[2] session id  ARGV[3] caller uid
-- ARGV[4] '1' if the caller may act for others
-- ARGV[5] end state: 'released' | 'forced' | 'revoked' | 'rollback'
--   ('rollback' erases a grant whose durable record could not be written: no trace)
-- returns {'ENDED', state, uid, hardware, acquired, last heartbeat, ended}
--         state is ARGV[5], or 'expired' if the lease had already run out
--       | {'ALREADY', state, uid, hardware, acquired, last heartbeat, ended}
--       | {'UNKNOWN'} | {'FORBIDDEN'} | {'ROLLED_BACK'}
local now, sid, state = tonumber(ARGV[1]), ARGV[2], ARGV[5]

local rec, refusal = owned_session(KEYS, sid, ARGV[3], ARGV[4])
if not rec then
  return refusal
end
if state == 'rollback' then
  redis.call('ZREM', KEYS[1], sid)
  if redis.call('HGET', KEYS[2], holder_key(rec)) == sid then
    redis.call('HDEL', KEYS[2], holder_key(rec))
  end
  redis.call('HDEL', KEYS[3], sid)
  redis.call('ZREM', KEYS[4], sid)
  redis.call('ZREM', KEYS[6], sid)
  return {'ROLLED_BACK'}
end
if rec.s ~= 'live' then
  return {'ALREADY', rec.s, rec.u, rec.h, rec.a, rec.b, rec.x}
end
if rec.e <= now then
  end_session(KEYS, sid, rec, 'expired', rec.e)
else
  end_session(KEYS, sid, rec, state, now)
end
return {'ENDED', rec.s, rec.u, rec.h, rec.a, rec.b, rec.x}
