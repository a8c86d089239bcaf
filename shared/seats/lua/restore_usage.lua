-- restore_usage: put back durable usage counters after a loss; a counter only ever grows.
-- KEYS[7] usage   (the others unused: every script gets all eleven)
-- ARGV pairs: field ("<hour>:<counter>"), value
for i = 1, #ARGV, 2 do
  if tonumber(redis.call('HGET', KEYS[7], ARGV[i]) or 0) < tonumber(ARGV[i + 1]) then
    redis.call('HSET', KEYS[7], ARGV[i], ARGV[i + 1])
  end
end
return 1
