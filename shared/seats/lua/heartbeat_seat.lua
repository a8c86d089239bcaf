-- heartbeat_seat: extend the owner's live lease (never shortening it: a borrow is a
-- long heartbeat), or revive it inside the revive window.
-- KEYS[1..11] leases, holders, sessions, ended, gen, unverified, usage, origin, classes,
-- queue, tickets (see the prelude)
-- ARGV[1] now (ms)   ARGV[2] lease ttl (ms)   ARGV[3] cached generation
-- ARGV[4] session id ARGV[5] caller uid       ARGV[6] '1' if the caller may act for others
-- ARGV[7] revive window (ms)                  ARGV[8] max seats
-- ARGV[9] '1' for a borrow (check-out): the record remembers until when it is borrowed
-- ARGV[10] for a lease restored after a loss (r = 1): '' not yet asked, '1' the caller
--          presented this session's lease token and it is still valid, '0' it did not
-- ARGV[11] the license's seat policy for the table (JSON, SeatPolicy.script_policy), or '':
--          a revival takes a seat as an acquire would, in the groups the lease was granted in
--          (a machine's, a seat of the CI pool if the license has one: see the prelude)
-- returns {'OK', expires, hardware id, uid, acquired, overage (0|1), CI pool (0|1)}
--       | {'REVIVED', expires, hardware id, uid, acquired, expired at, overage (0|1), CI pool (0|1)}
--         an expired lease back within the window, a seat being free for it (also a
--         restored lease whose caller could not show a valid token: expired at = 0)
--       | {'PROOF'}                   a restored lease: ask the caller's token, call again
--       | {'UNKNOWN'}                 no record here (never issued, or already settled)
--       | {'FORBIDDEN'}               another user's session
--       | {'ENDED', state}            expired (now or earlier), released, ...
--       | {'STALE'}                   reload the license, retry
--       | {'REBUILD'}                 the table may lack what clients hold: rebuild it, retry
local now, ttl, sid = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[4]

if needs_rebuild(KEYS) then
  return {'REBUILD'}
end
local rec, refusal = owned_session(KEYS, sid, ARGV[5], ARGV[6])
if not rec then
  return refusal
end
if redis.call('GET', KEYS[5]) ~= ARGV[3] then
  return {'STALE'}
end
local pol = ARGV[11] ~= '' and cjson.decode(ARGV[11]) or nil
local pool = pol and pol.ci or 0
-- A machine's lease on a license with a CI pool lives in the pool: its room is the pool's.
local pooled = pool > 0 and is_machine(rec.u)
local function room_taken_by_others()
  if pooled and rec.ci then
    return pool_use(KEYS, now) - 1 >= pool
  end
  return seats_used(KEYS, ARGV[1]) - 1 >= tonumber(ARGV[8])
end
local unproven = false
if rec.s == 'live' and rec.r and rec.e > now then
  -- Restored after a loss: it counts, but whether its holder's lease was still valid
  -- then is unknown (it may have lapsed, and its seat gone to someone else, before the
  -- loss). A valid token proves it was; without one this is a revival, which needs a
  -- seat nobody else holds.
  if ARGV[10] == '' then
    return {'PROOF'}
  end
  if ARGV[10] ~= '1' then
    if room_taken_by_others() then
      end_session(KEYS, sid, rec, 'expired', now)
      return {'ENDED', 'expired'}
    end
    unproven = true
  end
  rec.r = nil
end
if rec.s == 'live' and rec.e <= now then
  -- Too late: the seat was already free for others at rec.e.
  end_session(KEYS, sid, rec, 'expired', rec.e)
end
if rec.s == 'expired' and now - rec.x < tonumber(ARGV[7]) then
  local held = redis.call('HGET', KEYS[2], holder_key(rec))
  local held_expiry = held and redis.call('ZSCORE', KEYS[1], held)
  local taken = held_expiry and tonumber(held_expiry) > now
  local class = nil
  if not taken then
    if pooled then
      if pool_use(KEYS, now) < pool then
        class = 'c'
      end
    elseif pol then
      if not group_limit(KEYS, now, pol, rec.g or {}) then
        class = seat_class(KEYS, ARGV[1], tonumber(ARGV[8]), pol, rec.g or {})
      end
    elseif seats_used(KEYS, ARGV[1]) < tonumber(ARGV[8]) then
      class = ''
    end
  end
  if class then
    local expired_at = rec.x
    rec.s, rec.x, rec.b, rec.e = 'live', nil, now, now + ttl
    rec.rv, rec.ov, rec.ci = nil, nil, nil
    if class == 'c' then
      rec.ci = 1
    elseif class == 'o' then
      rec.ov = 1
    elseif class ~= '' then
      rec.rv = string.sub(class, 3)
    end
    redis.call('ZREM', KEYS[4], sid)
    redis.call('ZADD', KEYS[1], rec.e, sid)
    redis.call('HSET', KEYS[2], holder_key(rec), sid)
    redis.call('HSET', KEYS[3], sid, cjson.encode(rec))
    enter_classes(KEYS, sid, rec)
    return {'REVIVED', rec.e, rec.h, rec.u, rec.a, expired_at, rec.ov and 1 or 0, rec.ci and 1 or 0}
  end
end
if rec.s ~= 'live' then
  return {'ENDED', rec.s}
end
-- Never shorten: a borrowed (checked-out) lease keeps its longer expiry.
rec.b, rec.e = now, math.max(rec.e, now + ttl)
if ARGV[9] == '1' then
  rec.o = rec.e
end
redis.call('ZADD', KEYS[1], rec.e, sid)
redis.call('HSET', KEYS[3], sid, cjson.encode(rec))
if unproven then
  return {'REVIVED', rec.e, rec.h, rec.u, rec.a, 0, rec.ov and 1 or 0, rec.ci and 1 or 0}
end
return {'OK', rec.e, rec.h, rec.u, rec.a, rec.ov and 1 or 0, rec.ci and 1 or 0}
