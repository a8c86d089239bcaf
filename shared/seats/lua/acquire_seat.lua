-- acquire_seat: grant a seat of one license, or hand back the caller's live session.
-- KEYS[1] leases  KEYS[2] holders  KEYS[3] sessions  KEYS[4] ended  KEYS[5] gen
-- KEYS[6] unverified  KEYS[7] usage   KEYS[8] origin   (see the prelude; one hash tag)
-- ARGV[1] now (ms)             ARGV[2] lease ttl (ms)        ARGV[3] max seats
-- ARGV[4] cached generation    ARGV[5] uid                   ARGV[6] hardware id
-- ARGV[7] session id to use if a new seat is granted   ARGV[8] today (UTC, YYYY-MM-DD)
-- ARGV[9] max live sessions per user (0: no limit)
-- returns {'GRANTED', sid, expires, used, max}
--       | {'EXISTING', sid, expires, used, max, acquired}   same uid + hardware, renewed
--       | {'FULL', used, max, earliest expiry}
--       | {'USER_LIMIT', the user's live sessions, the limit}
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

local key = uid .. '\n' .. hw
local held = redis.call('HGET', KEYS[2], key)
if held then
  local expiry = redis.call('ZSCORE', KEYS[1], held)
  if expiry and tonumber(expiry) > now then
    -- A retried or repeated acquire: one user + hardware never holds two seats.
    local rec = cjson.decode(redis.call('HGET', KEYS[3], held))
    if rec.r then
      -- Restored after a loss, and an acquire shows no lease token: this pair's lease may
      -- have lapsed before the loss and its seat gone to someone else. Handed back only
      -- into a seat nobody else holds (as heartbeat_seat revives an unproven one).
      local others = live_count(KEYS, ARGV[1]) - 1
      if others >= max_seats then
        redis.call('HINCRBY', KEYS[7], ARGV[8] .. ':denials', 1)
        local first = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
        return {'FULL', others + 1, max_seats, tonumber(first[2])}
      end
      rec.r = nil
    end
    rec.b, rec.e = now, math.max(rec.e, now + ttl)  -- never shortens a borrow
    redis.call('ZADD', KEYS[1], rec.e, held)
    redis.call('HSET', KEYS[3], held, cjson.encode(rec))
    return {'EXISTING', held, rec.e, live_count(KEYS, ARGV[1]), max_seats, rec.a}
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
    return {'USER_LIMIT', mine, per_user}
  end
end

local used = live_count(KEYS, ARGV[1])
if used >= max_seats then
  redis.call('HINCRBY', KEYS[7], ARGV[8] .. ':denials', 1)
  redis.call('HSET', KEYS[7], 'changed', 1)  -- for the sweep to make durable
  local first = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
  return {'FULL', used, max_seats, tonumber(first[2])}
end

local rec = {u = uid, h = hw, a = now, b = now, e = now + ttl, s = 'live'}
redis.call('ZADD', KEYS[1], rec.e, new_sid)
redis.call('HSET', KEYS[2], key, new_sid)
redis.call('HSET', KEYS[3], new_sid, cjson.encode(rec))
redis.call('ZADD', KEYS[6], now, new_sid)
local peak = tonumber(redis.call('HGET', KEYS[7], ARGV[8] .. ':peak') or 0)
if used + 1 > peak then
  redis.call('HSET', KEYS[7], ARGV[8] .. ':peak', used + 1, 'changed', 1)
end
return {'GRANTED', new_sid, rec.e, used + 1, max_seats}
