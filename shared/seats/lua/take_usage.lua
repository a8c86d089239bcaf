-- take_usage: the license's usage counters, if they changed since the sweep last took them.
-- KEYS[7] usage   (the others unused: every script gets all eleven)
-- returns {} when nothing changed, else {field, value, ...} ("<day>:<counter>": peak, denials,
-- overage, queued, qwait_<seconds>)
if redis.call('HDEL', KEYS[7], 'changed') == 0 then
  return {}
end
local counters, all = {}, redis.call('HGETALL', KEYS[7])
for i = 1, #all, 2 do
  if all[i] ~= 'changed' then
    counters[#counters + 1] = all[i]
    counters[#counters + 1] = all[i + 1]
  end
end
return counters
