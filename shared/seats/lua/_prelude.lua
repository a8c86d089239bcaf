-- Prelude prepended to every seat script (a Redis script cannot include another).
--
-- Per license, eight keys share the hash tag {<license_id>}, so every script runs in
-- one cluster slot (every script is given all eight, in this order):
--   leases   ZSET   session id -> lease expiry; live leases only (expired ones are
--                   moved out lazily, and never counted: counts use score > now),
--                   and holds: "hold:<session id>" -> until when a borrowed seat that
--                   an admin ended stays counted (its borrow token is still valid
--                   offline; see release_seat)
--   holders  HASH   "<uid>\n<hardware id>" -> session id of that pair's live lease
--   sessions HASH   session id -> JSON {u uid, h hardware, a acquired, b last
--                   heartbeat, e expiry, s state: 'live' or an end reason (the one list:
--                   EndReason in shared/domain/sessions.py), x ended, o borrowed until
--                   (set by a borrow), r 1 when restored after a loss without proof
--                   that its holder's lease is still valid (see heartbeat_seat)};
--                   "hold:<session id>" -> JSON {u, h, a, b, o, e counted until, s 'held'}
--   ended    ZSET   session id -> end time: ends not yet written to Firestore
--                   (an outbox drained by the release path and the sweep)
--   gen      STRING generation of the license metadata; callers pass the one they
--                   cached and get STALE when an admin changed the license since
--   unverified ZSET session id -> acquired: live leases not yet matched with their
--                   durable record by a sweep (so a sweep's cost follows new leases)
--   usage    HASH   "<YYYY-MM-DD>:peak" and "<YYYY-MM-DD>:denials" per UTC day, and
--                   "changed" while the sweep has not made them durable (take_usage);
--                   a rebuild puts back what Firestore has (restore_usage)
--   origin   STRING the run id of the Redis process in which this table was last rebuilt
--                   from the durable record (restore_seats). Any other value, or none,
--                   means the table may lack grants or extensions that clients were told
--                   about: Redis restarted (empty or from an old snapshot), failed over to
--                   a replica that missed the last writes, was flushed, or lost this
--                   license's keys. Scripts that grant, extend, end or count then answer
--                   {'REBUILD'} and change nothing until the table is rebuilt.
-- All times are integer milliseconds since the Unix epoch, passed in by the caller
-- (the service's clock), never read from Redis TIME, so tests can control time.

-- The run id of this Redis process: new at every start, different on a promoted replica.
local function run_id()
  return string.match(redis.call('INFO', 'server'), 'run_id:(%x+)')
end

local function needs_rebuild(keys)
  return redis.call('GET', keys[8]) ~= run_id()
end

local function holder_key(rec)
  return rec.u .. '\n' .. rec.h
end

-- The record of session `sid` if the caller may act on it; otherwise nil and the reply
-- to give ({'UNKNOWN'} or {'FORBIDDEN'}).
local function owned_session(keys, sid, uid, may_act_for_others)
  local raw = redis.call('HGET', keys[3], sid)
  if not raw then
    return nil, {'UNKNOWN'}
  end
  local rec = cjson.decode(raw)
  if rec.u ~= uid and may_act_for_others ~= '1' then
    return nil, {'FORBIDDEN'}
  end
  return rec
end

-- Records ended by this script run, by session id (saves re-reading them).
local just_ended = {}

-- End a session record: state, end time, out of the live structures, into the outbox.
local function end_session(keys, sid, rec, state, ended_at)
  rec.s = state
  rec.x = ended_at
  redis.call('ZREM', keys[1], sid)
  if redis.call('HGET', keys[2], holder_key(rec)) == sid then
    redis.call('HDEL', keys[2], holder_key(rec))
  end
  local raw = cjson.encode(rec)
  just_ended[sid] = raw
  redis.call('HSET', keys[3], sid, raw)
  redis.call('ZADD', keys[4], ended_at, sid)
  redis.call('ZREM', keys[6], sid)
end

-- Move at most `limit` leases whose expiry is <= now out of the live set. Bounded so
-- one call never stalls Redis; correctness does not depend on it (counts skip them).
local function expire_due(keys, now_arg, limit)
  local due = redis.call('ZRANGEBYSCORE', keys[1], '-inf', now_arg, 'LIMIT', 0, limit)
  for _, sid in ipairs(due) do
    local raw = redis.call('HGET', keys[3], sid)
    local rec = raw and cjson.decode(raw)
    if rec and rec.s == 'live' then
      end_session(keys, sid, rec, 'expired', rec.e)
    else
      -- a hold that ran out (its record goes with it), or a record already forgotten
      redis.call('ZREM', keys[1], sid)
      if rec and rec.s == 'held' then
        redis.call('HDEL', keys[3], sid)
      end
    end
  end
  return #due
end

local function live_count(keys, now_arg)
  return redis.call('ZCOUNT', keys[1], '(' .. now_arg, '+inf')
end
