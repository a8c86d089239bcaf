-- restore_seats: rebuild a license's table from the durable record after Redis may have
-- lost some of it (see `origin` in the prelude), so that nothing a client was told about
-- is missing when the table grants again.
-- KEYS[1..11] leases, holders, sessions, ended, gen, unverified, usage, origin, classes,
-- queue, tickets (see the prelude)
-- ARGV[1] now (ms)   ARGV[2] lease ttl (ms)
-- ARGV[3] '1' if the entries are everything the durable record counts for this license
--         (the table is then trusted again: origin = this Redis's run id; a table trusted
--         already is left alone: it has been kept since its rebuild), '0' otherwise
-- ARGV[4] a fresh generation, used only if the license has none here
-- ARGV[5..] groups of 7: session id, uid, hardware id, acquired (ms), until (ms; 0: none), kind,
--   seat class as the durable record has it (JSON {g, rv, ov, ci} as in a lease record, or '')
--   kind 's': an active session; until = the end of its borrow, if borrowed
--   kind 'h': an ended borrow whose seat stays counted; until = when it stops
-- returns {'TRUSTED'} (with ARGV[3] = '1' on a trusted table: nothing done), or one
-- outcome per entry, in order:
--   'restored'   put back as a live lease (a borrow until its end; otherwise one ttl from
--                now, which no lost extension can exceed: every extension is now + ttl)
--   'kept'       live here already (its expiry raised to now + ttl, for the same reason)
--   'known'      ended here for a reason the durable record will learn from the outbox
--   'held' | 'lapsed'   a hold put back | already over
--   'superseded' its user + hardware holds another live lease here
-- Never refuses for want of seats: a restored session may be a holder whose token is
-- valid, so the table may count more than max seats until the extra ones lapse; meanwhile
-- nothing new is granted, and a restored lease whose holder cannot show a valid token
-- gets back only a seat nobody else holds (heartbeat_seat).
local now, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
if ARGV[3] == '1' and not needs_rebuild(KEYS) then
  return {'TRUSTED'}
end
local outcomes, listed = {}, {}
for i = 5, #ARGV, 7 do
  local sid, uid, hw, acquired = ARGV[i], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3])
  local until_ms, kind = tonumber(ARGV[i + 4]), ARGV[i + 5]
  local class = ARGV[i + 6] ~= '' and cjson.decode(ARGV[i + 6]) or {}
  listed[sid] = true
  if kind == 'h' then
    local hold = 'hold:' .. sid
    listed[hold] = true
    if redis.call('HEXISTS', KEYS[3], hold) == 1 then
      outcomes[#outcomes + 1] = 'known'
    elseif until_ms <= now then
      outcomes[#outcomes + 1] = 'lapsed'
    else
      local held = {u = uid, h = hw, a = acquired, b = acquired, e = until_ms, o = until_ms, s = 'held',
                    ci = class.ci}
      redis.call('ZADD', KEYS[1], until_ms, hold)
      redis.call('HSET', KEYS[3], hold, cjson.encode(held))
      enter_classes(KEYS, hold, held)  -- a held seat of the CI pool stays the pool's
      outcomes[#outcomes + 1] = 'held'
    end
  else
    local raw = redis.call('HGET', KEYS[3], sid)
    local rec = raw and cjson.decode(raw)
    local borrowed = until_ms > now
    if rec and rec.s == 'live' and rec.e > now then
      rec.e = math.max(rec.e, now + ttl, until_ms)
      redis.call('ZADD', KEYS[1], rec.e, sid)
      redis.call('HSET', KEYS[3], sid, cjson.encode(rec))
      outcomes[#outcomes + 1] = 'kept'
    elseif rec and rec.s ~= 'live' and rec.s ~= 'expired' then
      outcomes[#outcomes + 1] = 'known'
    else
      -- Missing, lapsed, or expired but not yet settled: a lost extension or revival
      -- may have kept its holder's lease valid.
      local key = uid .. '\n' .. hw
      local held = redis.call('HGET', KEYS[2], key)
      local held_expiry = held and held ~= sid and redis.call('ZSCORE', KEYS[1], held)
      if held_expiry and tonumber(held_expiry) > now then
        outcomes[#outcomes + 1] = 'superseded'
      else
        local restored = {u = uid, h = hw, a = acquired, b = (rec and rec.b) or acquired, e = now + ttl, s = 'live'}
        if borrowed then
          restored.o = until_ms  -- its token is valid offline until then: certain, no proof asked
          restored.e = math.max(restored.e, until_ms)
        else
          restored.r = 1
        end
        -- Its seat class as granted: reserved seats stay reserved, overage stays marked,
        -- a seat of the CI pool stays the pool's.
        if class.g and #class.g > 0 then
          restored.g = class.g
        end
        restored.rv, restored.ov, restored.ci = class.rv, class.ov, class.ci
        redis.call('ZREM', KEYS[4], sid)
        redis.call('ZADD', KEYS[1], restored.e, sid)
        redis.call('HSET', KEYS[2], key, sid)
        redis.call('HSET', KEYS[3], sid, cjson.encode(restored))
        enter_classes(KEYS, sid, restored)
        outcomes[#outcomes + 1] = 'restored'
      end
    end
  end
end
if ARGV[3] == '1' then
  -- Live here but not in the durable record (a grant whose record is being written, or
  -- an end this Redis lost): the sweep's verify step settles each against Firestore.
  local live = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf')
  for _, sid in ipairs(live) do
    local kind = string.sub(sid, 1, 5)
    if not listed[sid] and kind ~= 'hold:' and kind ~= 'claim' and not redis.call('ZSCORE', KEYS[6], sid) then
      redis.call('ZADD', KEYS[6], 0, sid)
    end
  end
  redis.call('SET', KEYS[5], ARGV[4], 'NX')
  redis.call('SET', KEYS[8], run_id())
end
return outcomes
