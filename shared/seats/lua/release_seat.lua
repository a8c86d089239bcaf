-- release_seat: end a live lease now (owner, admin, or a rolled-back grant).
-- KEYS[1..11] leases, holders, sessions, ended, gen, unverified, usage, origin, classes,
-- queue, tickets (see the prelude)
-- ARGV[1] now (ms)  ARGV[2] session id  ARGV[3] caller uid
-- ARGV[4] '1' if the caller may act for others
-- ARGV[5] an end reason (EndReason in shared/domain/sessions.py: released, returned,
--   forced, revoked, unrecorded), or 'rollback', which erases a grant whose durable
--   record could not be written: no trace
-- ARGV[6] the license's offline grace (ms)   ARGV[7] the license's end (ms; 0: none)
-- returns {'ENDED', state, uid, hardware, acquired, last heartbeat, ended, held until}
--         state is ARGV[5], or 'expired' if the lease had already run out; held until
--         is 0, or, when an admin ('forced', 'revoked') ended a borrowed lease whose
--         token is still valid offline, the instant the seat stops counting: the
--         borrow's end plus the grace (capped at the license's end), as signed
--       | {'ALREADY', state, uid, hardware, acquired, last heartbeat, ended, 0}
--       | {'UNKNOWN'} | {'FORBIDDEN'} | {'ROLLED_BACK'}
--       | {'REBUILD'}   (never for a rollback: erasing a grant nobody recorded is always safe)
local now, sid, state = tonumber(ARGV[1]), ARGV[2], ARGV[5]

if state ~= 'rollback' and needs_rebuild(KEYS) then
  return {'REBUILD'}
end

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
  leave_classes(KEYS, sid, rec)
  return {'ROLLED_BACK'}
end
if rec.s ~= 'live' then
  return {'ALREADY', rec.s, rec.u, rec.h, rec.a, rec.b, rec.x, 0}
end
if rec.e <= now then
  end_session(KEYS, sid, rec, 'expired', rec.e)
  return {'ENDED', rec.s, rec.u, rec.h, rec.a, rec.b, rec.x, 0}
end
end_session(KEYS, sid, rec, state, now)
local held_until = 0
if rec.o and (state == 'forced' or state == 'revoked') then
  -- The borrower may be offline with a token nobody can take back: the seat keeps
  -- counting until that token lapses, so ending it frees no seat early.
  held_until = rec.o + tonumber(ARGV[6])
  local license_end = tonumber(ARGV[7])
  if license_end > 0 and license_end < held_until then
    held_until = license_end
  end
  if held_until > now then
    local hold = 'hold:' .. sid
    -- (a seat of the CI pool stays the pool's while it is held)
    local held = {u = rec.u, h = rec.h, a = rec.a, b = rec.b, e = held_until, o = rec.o, s = 'held', ci = rec.ci}
    redis.call('ZADD', KEYS[1], held_until, hold)
    redis.call('HSET', KEYS[3], hold, cjson.encode(held))
    enter_classes(KEYS, hold, held)
  else
    held_until = 0
  end
end
return {'ENDED', rec.s, rec.u, rec.h, rec.a, rec.b, rec.x, held_until}
