-- mark_verified: remember that live leases were found in the durable record.
-- KEYS[3] sessions   (KEYS[1..2], KEYS[4] unused: a uniform key list)
-- ARGV session ids
-- returns how many were marked
local marked = 0
for _, sid in ipairs(ARGV) do
  local raw = redis.call('HGET', KEYS[3], sid)
  if raw then
    local rec = cjson.decode(raw)
    rec.v = 1
    redis.call('HSET', KEYS[3], sid, cjson.encode(rec))
    marked = marked + 1
  end
end
return marked
