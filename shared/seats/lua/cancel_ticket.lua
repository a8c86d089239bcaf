-- cancel_ticket: leave a license's wait queue (the ticket's held seat, if any, passes on).
-- KEYS[1..11] leases, holders, sessions, ended, gen, unverified, usage, origin, classes,
-- queue, tickets (see the prelude)
-- ARGV[1] ticket id   ARGV[2] caller uid   ARGV[3] '1' if the caller may act for others
-- returns {'CANCELLED', the ticket's JSON (see `tickets` in the prelude)}
--       | {'UNKNOWN'} (no such ticket: lapsed, served or cancelled) | {'FORBIDDEN'}
local raw = redis.call('HGET', KEYS[11], ARGV[1])
if not raw then
  return {'UNKNOWN'}
end
local ticket = cjson.decode(raw)
if ticket.u ~= ARGV[2] and ARGV[3] ~= '1' then
  return {'FORBIDDEN'}
end
drop_ticket(KEYS, ARGV[1], ticket)
return {'CANCELLED', raw}
