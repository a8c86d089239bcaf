-- queue_tickets: a license's wait queue, in order, for administrators (reads only).
-- KEYS[1..11] (see the prelude)   ARGV[1] most tickets to list
-- returns {ticket id, ticket JSON, ...} in queue order
local out = {}
for _, tid in ipairs(redis.call('ZRANGE', KEYS[10], 0, tonumber(ARGV[1]) - 1)) do
  local raw = redis.call('HGET', KEYS[11], tid)
  if raw then
    out[#out + 1] = tid
    out[#out + 1] = raw
  end
end
return out
