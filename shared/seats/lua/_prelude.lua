-- Prelude prepended to every seat script (a Redis script cannot include another).
--
-- Per license, eleven keys share the hash tag {<license_id>}, so every script runs in
-- one cluster slot (every script is given all eleven, in this order):
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
--                   "hold:<session id>" -> JSON {u, h, a, b, o, e counted until, s 'held',
--                   ci 1 when it holds a seat of the CI pool}
--   ended    ZSET   session id -> end time: ends not yet written to Firestore
--                   (an outbox drained by the release path and the sweep)
--   gen      STRING generation of the license metadata; callers pass the one they
--                   cached and get STALE when an admin changed the license since
--   unverified ZSET session id -> acquired: live leases not yet matched with their
--                   durable record by a sweep (so a sweep's cost follows new leases)
--   usage    HASH   counters per UTC hour, "<YYYY-MM-DDTHH>:<counter>" (the names are
--                   shared/domain/usage.py's: denials:<reason>, denied_callers, queued,
--                   qwait_<bucket>, overage), "<hour>:who:<uid>\n<hardware>" marking a
--                   caller already counted in denied_callers, and "changed" while the
--                   sweep has not made them durable (take_usage); a rebuild puts back
--                   the sweep's last checkpoint (restore_usage)
--   origin   STRING the run id of the Redis process in which this table was last rebuilt
--                   from the durable record (restore_seats). Any other value, or none,
--                   means the table may lack grants or extensions that clients were told
--                   about: Redis restarted (empty or from an old snapshot), failed over to
--                   a replica that missed the last writes, was flushed, or lost this
--                   license's keys. Scripts that grant, extend, end or count then answer
--                   {'REBUILD'} and change nothing until the table is rebuilt.
--   classes  ZSET   (all scores 0, read by lexical range) the seat-policy classes of live
--                   leases, "<tag>\n<session id>": tag "g:<group>" for each group its
--                   holder was in when granted (group maximums count them), "r:<group>"
--                   for a seat reserved for that group; and "o\n<acquired, 15 digits>:
--                   <session id>" for an overage seat (beyond max seats, within the
--                   overdraft), oldest first; "c\n<session id>" for a seat of the CI pool
--                   (held by a machine key, beside max seats). A lease's record holds the
--                   same: g (its groups), rv (reserved for), ov (1: overage), ci (1: the CI
--                   pool). A lease with none of rv, ov, ci holds an unreserved seat. Entries
--                   leave with their lease (end_session). See shared/domain/policies.py.
--   queue    ZSET   ticket id -> place in line (priority rank x 1e13 + enqueued ms)
--   tickets  HASH   ticket id -> JSON {u uid, h hardware, g groups, a enqueued, k alive
--                   until (a poll moves it on), c claim: until when a seat is held for it
--                   (absent: still waiting), rv / ov its held seat's class}
-- The wait queue: a ticket's held seat is a member "claim:<ticket id>" of `leases`, scored
-- by its claim's end, so every count includes it; its class entries are under that name.
-- Tickets are served in queue order whenever a script looks (an acquire or a poll):
-- each waiting ticket that a seat can be found for, by the same rules as an acquire, gets
-- it held; a ticket not polled in time, or not claimed in its window, lapses and its seat
-- passes on. Nobody is overtaken for a seat they could take: every acquire first serves
-- the waiting tickets in order, so a newcomer without a ticket gets only a seat none of
-- them can take (a reservation, a group's maximum), and none at all while more tickets
-- wait than one call looks at. Tickets are not durable: after a Redis loss their holders
-- queue again.
-- The CI pool (`ci` of the policy JSON: License.ci_seats): a machine (a holder whose uid
-- begins "key:", a machine key's; the auth boundary refuses such a uid in an ID token)
-- takes a pool seat while the pool has room and never a seat of max seats while the license
-- has a pool; users never take a pool seat. Pool leases count against the pool only: every
-- count of max seats (seats_used) leaves them out. Without a pool, machines hold ordinary
-- seats under the ordinary rules.
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

local function is_machine(uid)
  return string.sub(uid, 1, 4) == 'key:'
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

-- The seat-policy class entries of a lease (see `classes` above).
local function class_entries(sid, rec)
  local entries = {}
  for _, g in ipairs(rec.g or {}) do
    entries[#entries + 1] = 'g:' .. g .. '\n' .. sid
  end
  if rec.rv then
    entries[#entries + 1] = 'r:' .. rec.rv .. '\n' .. sid
  end
  if rec.ov then
    entries[#entries + 1] = 'o\n' .. string.format('%015.0f', rec.a) .. ':' .. sid
  end
  if rec.ci then
    entries[#entries + 1] = 'c\n' .. sid
  end
  return entries
end

local function enter_classes(keys, sid, rec)
  for _, entry in ipairs(class_entries(sid, rec)) do
    redis.call('ZADD', keys[9], 0, entry)
  end
end

local function leave_classes(keys, sid, rec)
  local entries = class_entries(sid, rec)
  if #entries > 0 then
    redis.call('ZREM', keys[9], unpack(entries))
  end
end

-- Live leases entered under `tag` (their entries outlive an expiry until the lease is
-- moved out; a lease counts only while its expiry is in the future, as live_count).
local function count_class(keys, tag, now)
  local prefix = tag .. '\n'
  local n = 0
  for _, entry in ipairs(redis.call('ZRANGEBYLEX', keys[9], '[' .. prefix, '[' .. prefix .. '\255')) do
    local rest = string.sub(entry, #prefix + 1)
    local expiry = redis.call('ZSCORE', keys[1], string.match(rest, '^%d+:(.+)$') or rest)
    if expiry and tonumber(expiry) > now then
      n = n + 1
    end
  end
  return n
end

-- An unreserved seat just freed: the oldest overage lease (if any) takes it, so that
-- the leases marked overage are always exactly those beyond the license's seats.
local function promote_overage(keys)
  -- (a seat held for a ticket keeps its class: its claim recomputes it)
  for _, entry in ipairs(redis.call('ZRANGEBYLEX', keys[9], '[o\n', '[o\n\255', 'LIMIT', 0, 20)) do
    local sid = string.match(entry, '^o\n%d+:(.+)$')
    local raw = sid and string.sub(sid, 1, 6) ~= 'claim:' and redis.call('HGET', keys[3], sid)
    if raw then
      redis.call('ZREM', keys[9], entry)
      local rec = cjson.decode(raw)
      rec.ov = nil
      redis.call('HSET', keys[3], sid, cjson.encode(rec))
      return
    end
  end
end

-- Count a refused acquire of hour `hour` for `reason` (shared/domain/usage.py's
-- DENIAL_REASONS); `who` ("<uid>\n<hardware>"), for a refusal for want of a seat, is
-- counted once an hour among the distinct callers refused (the right-sizing input).
local function count_denial(keys, hour, reason, who)
  redis.call('HINCRBY', keys[7], hour .. ':denials:' .. reason, 1)
  if who and redis.call('HSETNX', keys[7], hour .. ':who:' .. who, 1) == 1 then
    redis.call('HINCRBY', keys[7], hour .. ':denied_callers', 1)
  end
  redis.call('HSET', keys[7], 'changed', 1)
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
  leave_classes(keys, sid, rec)
  if not rec.rv and not rec.ov and not rec.ci then
    promote_overage(keys)
  end
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
    elseif string.sub(sid, 1, 6) == 'claim:' then
      -- a seat held for a ticket that was not claimed in its window: the ticket lapses
      local tid = string.sub(sid, 7)
      local raw_ticket = redis.call('HGET', keys[11], tid)
      redis.call('ZREM', keys[1], sid)
      redis.call('ZREM', keys[10], tid)
      redis.call('HDEL', keys[11], tid)
      if raw_ticket then
        local ticket = cjson.decode(raw_ticket)
        leave_classes(keys, sid, ticket)
        local by = 'by:' .. ticket.u .. '\n' .. ticket.h
        if redis.call('HGET', keys[11], by) == tid then
          redis.call('HDEL', keys[11], by)
        end
      end
    else
      -- a hold that ran out (its record and class entries go with it), or a record already forgotten
      redis.call('ZREM', keys[1], sid)
      if rec and rec.s == 'held' then
        redis.call('HDEL', keys[3], sid)
        leave_classes(keys, sid, rec)
      end
    end
  end
  return #due
end

local function live_count(keys, now_arg)
  return redis.call('ZCOUNT', keys[1], '(' .. now_arg, '+inf')
end

local function earliest_expiry(keys, now_arg)
  local first = redis.call('ZRANGEBYSCORE', keys[1], '(' .. now_arg, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
  return tonumber(first[2] or 0)  -- 0: none (a nil would end the reply there)
end

-- Seats of max seats counted now: every live lease but the CI pool's.
local function seats_used(keys, now_arg)
  return live_count(keys, now_arg) - count_class(keys, 'c', tonumber(now_arg))
end

-- The CI pool's live leases, and the soonest of their expiries (0: none).
local function pool_use(keys, now)
  local n, soonest = 0, 0
  for _, entry in ipairs(redis.call('ZRANGEBYLEX', keys[9], '[c\n', '[c\n\255')) do
    local expiry = tonumber(redis.call('ZSCORE', keys[1], string.sub(entry, 3)) or 0)
    if expiry > now then
      n = n + 1
      if soonest == 0 or expiry < soonest then
        soonest = expiry
      end
    end
  end
  return n, soonest
end

-- Which seat a holder in `groups` gets under the license's policy `pol` (JSON of
-- SeatPolicy.script_policy: max {group: seats}, res [[group, seats]] in policy order,
-- od overdraft seats), after the evaluation order's table steps:
--   group max -> (the caller checks the per-user max) -> a seat reserved for one of its
--   groups -> an unreserved seat -> an overage seat -> none.
-- Returns the class ('r:<group>', '' unreserved, 'o' overage), or nil and the refusal
-- ({'GROUP_LIMIT', group, held, max} | {'FULL', used, max seats, earliest expiry,
-- reserved seats idle for others, overdraft}).
local function group_limit(keys, now, pol, groups)
  for _, g in ipairs(groups) do
    local limit = pol.max and pol.max[g]
    if limit then
      local held = count_class(keys, 'g:' .. g, now)
      if held >= limit then
        return {'GROUP_LIMIT', g, held, limit}
      end
    end
  end
  return nil
end

-- `used`: seats_used now, if the caller has it already (nil: counted here).
local function seat_class(keys, now_arg, max_seats, pol, groups, used)
  local now = tonumber(now_arg)
  local member = {}
  for _, g in ipairs(groups) do
    member[g] = true
  end
  used = used or seats_used(keys, now_arg)  -- the CI pool's leases are not of max seats
  local reserved_total, reserved_used, idle_for_others = 0, 0, 0
  local mine = nil
  for _, r in ipairs(pol.res or {}) do
    local g, seats = r[1], r[2]
    local held = count_class(keys, 'r:' .. g, now)
    reserved_total = reserved_total + seats
    reserved_used = reserved_used + math.min(held, seats)
    if held < seats then
      if member[g] and not mine then
        mine = g
      else
        idle_for_others = idle_for_others + seats - held
      end
    end
  end
  if mine then
    return 'r:' .. mine
  end
  local overage = 0
  local overdraft = pol.od or 0
  if overdraft > 0 then
    overage = count_class(keys, 'o', now)
  end
  -- Unreserved leases: all the rest but the CI pool's (holds of ended borrows, and leases
  -- reserved for a group beyond its current reservation, count here too).
  if used - reserved_used - overage < max_seats - reserved_total then
    return ''
  end
  if overage < overdraft and used < max_seats + overdraft then
    return 'o'
  end
  return nil, {'FULL', used, max_seats, earliest_expiry(keys, now_arg), idle_for_others, overdraft}
end

-- The wait queue (see `queue` and `tickets` above). `pol.q`: n most tickets, claim and
-- keep (ms), prio {group: rank}.
local function drop_ticket(keys, tid, ticket)
  redis.call('ZREM', keys[10], tid)
  redis.call('HDEL', keys[11], tid)
  local by = 'by:' .. ticket.u .. '\n' .. ticket.h
  if redis.call('HGET', keys[11], by) == tid then
    redis.call('HDEL', keys[11], by)
  end
  if ticket.c then
    local claim = 'claim:' .. tid
    redis.call('ZREM', keys[1], claim)
    leave_classes(keys, claim, ticket)
  end
end

-- Drop lapsed tickets and hold a seat for each waiting ticket one can be found for, in
-- queue order (at most the first 100: bounded work per call). Returns how many of those
-- still wait without a seat, and whether that was the whole queue: then every seat still
-- free is one no waiting ticket can take (its group's maximum, a reservation), and a
-- newcomer may take it without overtaking anyone.
local function serve_queue(keys, now_arg, max_seats, pol)
  local now = tonumber(now_arg)
  local waiting = 0
  local scanned = redis.call('ZRANGE', keys[10], 0, 99)
  for _, tid in ipairs(scanned) do
    local raw = redis.call('HGET', keys[11], tid)
    local ticket = raw and cjson.decode(raw)
    if not ticket then
      redis.call('ZREM', keys[10], tid)
    elseif ticket.k <= now or (ticket.c and ticket.c <= now) then
      drop_ticket(keys, tid, ticket)
    elseif not ticket.c then
      local class = nil
      if not group_limit(keys, now, pol, ticket.g) then
        class = seat_class(keys, now_arg, max_seats, pol, ticket.g)
      end
      if class then
        ticket.c = now + pol.q.claim
        if class == 'o' then
          ticket.ov = 1
        elseif class ~= '' then
          ticket.rv = string.sub(class, 3)
        end
        local claim = 'claim:' .. tid
        redis.call('ZADD', keys[1], ticket.c, claim)
        redis.call('HSET', keys[11], tid, cjson.encode(ticket))
        enter_classes(keys, claim, ticket)
      else
        waiting = waiting + 1
      end
    end
  end
  return waiting, #scanned < 100
end

-- A ticket's place in the line, 1 first.
local function queue_position(keys, tid)
  return redis.call('ZRANK', keys[10], tid) + 1
end

local function queue_score(pol, groups, now)
  local rank = nil
  for _, g in ipairs(groups) do
    local r = pol.q.prio[g]
    if r and (not rank or r < rank) then
      rank = r
    end
  end
  if not rank then
    local n = 0
    for _ in pairs(pol.q.prio) do
      n = n + 1
    end
    rank = n
  end
  return rank * 1e13 + now
end
