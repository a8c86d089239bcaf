-- acquire_seat: grant a seat of one license, or hand back the caller's live session.
-- KEYS[1] leases  KEYS[2] holders  KEYS[3] sessions  KEYS[4] ended  KEYS[5] gen
-- KEYS[6] unverified  KEYS[7] usage   KEYS[8] origin   KEYS[9] classes
-- KEYS[10] queue  KEYS[11] tickets   (see the prelude; one hash tag)
-- ARGV[1] now (ms)             ARGV[2] lease ttl (ms)        ARGV[3] max seats
-- ARGV[4] cached generation    ARGV[5] uid                   ARGV[6] hardware id
-- ARGV[7] session id to use if a new seat is granted   ARGV[8] this hour (UTC, YYYY-MM-DDTHH)
-- ARGV[9] max live sessions per user (0: no limit)
-- ARGV[10] the license's seat policy for the table (JSON, SeatPolicy.script_policy), or ''
-- ARGV[11] the caller's groups under that policy (JSON list), or ''
-- ARGV[12] the caller's queue ticket, when it polls one ('' none)
-- ARGV[13] '1': with no seat for it, queue the caller (the policy has a queue)
-- ARGV[14] the ticket id to use if the caller is queued
-- ARGV[15] what administrators are shown of a new lease (JSON text: e-mail, client hostname
--          and version), kept as it is in its record's `m`; '' none
-- A machine (uid "key:...") on a license whose policy has a CI pool (pol.ci) takes a pool
-- seat or none: never a seat of max seats, never a place in the queue; group maximums and
-- the per-user maximum do not apply to it (the pool is its bound).
-- returns {'GRANTED', sid, expires, used, max, overage (0|1), reserved for ('' none),
--          ms waited in the queue (0: not queued), CI pool (0|1)}
--          (used and max are of max seats, or of the CI pool for a pool seat)
--       | {'EXISTING', sid, expires, used, max, acquired, overage, reserved for, CI pool}
--         same uid + hardware, renewed
--       | {'FULL', used, max, earliest expiry, reserved seats idle for others, overdraft,
--          tickets waiting ahead (a newcomer does not overtake them), queue full (0|1),
--          CI pool (0|1: the pool is full; used, max and earliest expiry are the pool's)}
--       | {'QUEUED', ticket, position (1: next), tickets in the queue}
--       | {'TICKET_GONE'}  the ticket lapsed, was cancelled or is another's: queue again
--       | {'USER_LIMIT', the user's live sessions, the limit}
--       | {'GROUP_LIMIT', group, its members' live sessions, the group's maximum}
--       | {'STALE'}                                        reload the license, retry
--       | {'REBUILD'}       the table may lack what clients hold: rebuild it, retry
local now, ttl, max_seats = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local uid, hw, new_sid = ARGV[5], ARGV[6], ARGV[7]

if needs_rebuild(KEYS) then
  return {'REBUILD'}
end
if redis.call('GET', KEYS[5]) ~= ARGV[4] then
  return {'STALE'}
end
-- Expired leases leave first, so a dead client's seat is free at its expiry instant.
expire_due(KEYS, ARGV[1], 100)

local pol = ARGV[10] ~= '' and cjson.decode(ARGV[10]) or nil
local pool = pol and pol.ci or 0
local key = uid .. '\n' .. hw
local held = redis.call('HGET', KEYS[2], key)
if held then
  local expiry = redis.call('ZSCORE', KEYS[1], held)
  if expiry and tonumber(expiry) > now then
    -- A retried or repeated acquire: one user + hardware never holds two seats.
    local rec = cjson.decode(redis.call('HGET', KEYS[3], held))
    local in_use, limit = 0, max_seats
    if rec.ci and pool > 0 then  -- (a pool lease of a license whose pool has gone counts as ordinary)
      in_use, limit = pool_use(KEYS, now), pool
    else
      in_use = seats_used(KEYS, ARGV[1])
    end
    if rec.r then
      -- Restored after a loss, and an acquire shows no lease token: this pair's lease may
      -- have lapsed before the loss and its seat gone to someone else. Handed back only
      -- into a seat nobody else holds (as heartbeat_seat revives an unproven one).
      if in_use - 1 >= limit then
        if rec.ci then
          count_denial(KEYS, ARGV[8], 'ci_pool', nil)
        else
          count_denial(KEYS, ARGV[8], 'no_seat', key)
        end
        return {'FULL', in_use, limit, earliest_expiry(KEYS, ARGV[1]), 0, 0, 0, 0, rec.ci and 1 or 0}
      end
      rec.r = nil
    end
    rec.b, rec.e = now, math.max(rec.e, now + ttl)  -- never shortens a borrow
    redis.call('ZADD', KEYS[1], rec.e, held)
    redis.call('HSET', KEYS[3], held, cjson.encode(rec))
    if ARGV[12] ~= '' then  -- it holds a seat already: its ticket has no more use
      local raw_ticket = redis.call('HGET', KEYS[11], ARGV[12])
      local ticket = raw_ticket and cjson.decode(raw_ticket)
      if ticket and ticket.u == uid and ticket.h == hw then
        drop_ticket(KEYS, ARGV[12], ticket)
      end
    end
    return {'EXISTING', held, rec.e, in_use, limit, rec.a, rec.ov and 1 or 0, rec.rv or '', rec.ci and 1 or 0}
  end
end

-- A new lease: into the live structures and its classes.
local function grant_lease(rec)
  if ARGV[15] ~= nil and ARGV[15] ~= '' then
    rec.m = ARGV[15]
  end
  redis.call('ZADD', KEYS[1], rec.e, new_sid)
  redis.call('HSET', KEYS[2], key, new_sid)
  redis.call('HSET', KEYS[3], new_sid, cjson.encode(rec))
  redis.call('ZADD', KEYS[6], now, new_sid)
  enter_classes(KEYS, new_sid, rec)
end

if pool > 0 and is_machine(uid) then
  -- The CI pool: a seat of it, or none (see above); its refusals are counted apart.
  if ARGV[12] ~= '' then
    return {'TICKET_GONE'}
  end
  local in_pool, soonest = pool_use(KEYS, now)
  if in_pool >= pool then
    count_denial(KEYS, ARGV[8], 'ci_pool', nil)
    return {'FULL', in_pool, pool, soonest, 0, 0, 0, 0, 1}
  end
  grant_lease({u = uid, h = hw, a = now, b = now, e = now + ttl, s = 'live', ci = 1})
  return {'GRANTED', new_sid, now + ttl, in_pool + 1, pool, 0, '', 0, 1}
end

local groups = ARGV[11] ~= '' and cjson.decode(ARGV[11]) or {}
local queue = pol and pol.q

-- A poll of a ticket: keep it alive; it may have a seat held for it by now.
local tid, waited = ARGV[12], nil
if tid ~= '' then
  local raw_ticket = redis.call('HGET', KEYS[11], tid)
  local ticket = raw_ticket and cjson.decode(raw_ticket)
  if not ticket or ticket.u ~= uid or ticket.h ~= hw then
    return {'TICKET_GONE'}
  end
  if not queue or ticket.k <= now or (ticket.c and ticket.c <= now) then
    drop_ticket(KEYS, tid, ticket)
    return {'TICKET_GONE'}
  end
  ticket.k = now + queue.keep
  if not ticket.c then
    ticket.g = groups  -- a policy edit applies to waiting tickets at once
  end
  redis.call('HSET', KEYS[11], tid, cjson.encode(ticket))
end
local waiting, whole_queue = 0, true
if queue then
  waiting, whole_queue = serve_queue(KEYS, ARGV[1], max_seats, pol)
end
if tid ~= '' then
  local raw_ticket = redis.call('HGET', KEYS[11], tid)
  local ticket = raw_ticket and cjson.decode(raw_ticket)
  if not ticket then
    return {'TICKET_GONE'}
  end
  if not ticket.c then
    return {'QUEUED', tid, queue_position(KEYS, tid), redis.call('ZCARD', KEYS[10])}
  end
  -- Its seat was held for it: the claim becomes its lease, taken as an acquire takes one.
  waited = now - ticket.a
  drop_ticket(KEYS, tid, ticket)
end

-- Queue the caller (asked for, and the license has a queue) instead of refusing it.
local function queued_or(refusal)
  if ARGV[13] ~= '1' or not queue or refusal[1] == 'USER_LIMIT' then
    return refusal
  end
  local by = 'by:' .. key
  local existing = redis.call('HGET', KEYS[11], by)
  if existing and redis.call('ZSCORE', KEYS[10], existing) then
    return {'QUEUED', existing, queue_position(KEYS, existing), redis.call('ZCARD', KEYS[10])}
  end
  if redis.call('ZCARD', KEYS[10]) >= queue.n then
    if refusal[1] == 'FULL' then
      refusal[8] = 1
    end
    return refusal
  end
  local ticket = {u = uid, h = hw, g = groups, a = now, k = now + queue.keep}
  local new_tid = ARGV[14]
  redis.call('ZADD', KEYS[10], queue_score(pol, groups, now), new_tid)
  redis.call('HSET', KEYS[11], new_tid, cjson.encode(ticket), by, new_tid)
  return {'QUEUED', new_tid, queue_position(KEYS, new_tid), redis.call('ZCARD', KEYS[10])}
end

local function denied(refusal)
  if not waited then  -- a waiting client's polls are not denials: its first refusal was
    if refusal[1] == 'GROUP_LIMIT' then
      count_denial(KEYS, ARGV[8], 'group_limit', nil)
    else
      count_denial(KEYS, ARGV[8], 'no_seat', key)
    end
  end
  return queued_or(refusal)
end

if pol then
  local refusal = group_limit(KEYS, now, pol, groups)
  if refusal then
    return denied(refusal)
  end
end

local per_user = tonumber(ARGV[9])
if per_user > 0 then
  -- The user's live leases, on any hardware: a scan of the holders (only when the
  -- license sets a limit). Glob characters in the uid are escaped for MATCH.
  local pattern = uid:gsub('[%*%?%[%]\\]', '\\%0') .. '\n*'
  local cursor, mine = '0', 0
  repeat
    local page = redis.call('HSCAN', KEYS[2], cursor, 'MATCH', pattern, 'COUNT', 500)
    cursor = page[1]
    for i = 2, #page[2], 2 do
      local expiry = redis.call('ZSCORE', KEYS[1], page[2][i])
      if expiry and tonumber(expiry) > now then
        mine = mine + 1
      end
    end
  until cursor == '0'
  if mine >= per_user then
    count_denial(KEYS, ARGV[8], 'user_limit', nil)
    return {'USER_LIMIT', mine, per_user}
  end
end

local used = seats_used(KEYS, ARGV[1])
local class = ''
if waiting > 0 and not whole_queue and not waited then
  -- Tickets wait beyond what serve_queue looked at: a free seat may be one of theirs, and
  -- a newcomer never overtakes a waiting ticket.
  return denied({'FULL', used, max_seats, earliest_expiry(KEYS, ARGV[1]), 0, pol.od or 0, waiting, 0})
end
if pol then
  local refusal
  class, refusal = seat_class(KEYS, ARGV[1], max_seats, pol, groups, used)
  if not class then
    refusal[7], refusal[8] = waiting, 0  -- (those waiting could take no free seat either)
    return denied(refusal)
  end
elseif used >= max_seats then
  return denied({'FULL', used, max_seats, earliest_expiry(KEYS, ARGV[1]), 0, 0, 0, 0})
end

local rec = {u = uid, h = hw, a = now, b = now, e = now + ttl, s = 'live'}
if #groups > 0 then
  rec.g = groups
end
if class == 'o' then
  rec.ov = 1
elseif class ~= '' then
  rec.rv = string.sub(class, 3)
end
grant_lease(rec)
-- (The peak and seat time are read from the durable session records, not counted here.)
if waited then
  -- How long the queue made this caller wait: a count and a histogram per hour
  -- (shared/domain/usage.py reads percentiles from it).
  local bucket = 'inf'
  for _, limit in ipairs({1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600}) do
    if waited <= limit * 1000 then
      bucket = tostring(limit)
      break
    end
  end
  redis.call('HINCRBY', KEYS[7], ARGV[8] .. ':queued', 1)
  redis.call('HINCRBY', KEYS[7], ARGV[8] .. ':qwait_' .. bucket, 1)
  redis.call('HSET', KEYS[7], 'changed', 1)
end
if rec.ov then
  local over = used + 1 - max_seats
  if over > tonumber(redis.call('HGET', KEYS[7], ARGV[8] .. ':overage') or 0) then
    redis.call('HSET', KEYS[7], ARGV[8] .. ':overage', over, 'changed', 1)
  end
end
return {'GRANTED', new_sid, rec.e, used + 1, max_seats, rec.ov and 1 or 0, rec.rv or '', waited or 0, 0}
