-- take_usage: the license's usage counters, if they changed since the sweep last took them.
-- KEYS[7] usage   KEYS[8] origin   (the others unused: every script gets all eleven)
-- ARGV[1] the first hour not yet closed ("YYYY-MM-DDTHH"): fields of earlier hours are
--         durable in their closed hour and are dropped here
-- returns {} when nothing changed (or the table awaits its rebuild: its counters may be
--         short of the durable ones until then, and must not overwrite them), else
--         {field, value, ...} ("<hour>:<counter>"; the "who" markers are left out)
local keep_from = ARGV[1]
local all = redis.call('HGETALL', KEYS[7])
local stale = {}
for i = 1, #all, 2 do
  if all[i] ~= 'changed' and string.sub(all[i], 1, 13) < keep_from then
    stale[#stale + 1] = all[i]
  end
end
for i = 1, #stale, 500 do
  redis.call('HDEL', KEYS[7], unpack(stale, i, math.min(i + 499, #stale)))
end
if needs_rebuild(KEYS) or redis.call('HDEL', KEYS[7], 'changed') == 0 then
  return {}
end
local counters = {}
for i = 1, #all, 2 do
  local field = all[i]
  if field ~= 'changed' and string.sub(field, 1, 13) >= keep_from and not string.find(field, ':who:', 1, true) then
    counters[#counters + 1] = field
    counters[#counters + 1] = all[i + 1]
  end
end
return counters
