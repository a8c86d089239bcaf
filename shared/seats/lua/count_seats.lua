-- count_seats: live leases of one license, for validate.
-- KEYS[1] leases  KEYS[5] gen  KEYS[8] origin   (the others unused: every script gets all eleven)
-- ARGV[1] now (ms)   ARGV[2] cached generation
-- returns {'OK', seats of max seats used (the CI pool's leases not among them), earliest
--          expiry or -1, seats of the CI pool used} | {'STALE'} | {'REBUILD'}
if needs_rebuild(KEYS) then
  return {'REBUILD'}
end
if redis.call('GET', KEYS[5]) ~= ARGV[2] then
  return {'STALE'}
end
local first = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
local in_pool = pool_use(KEYS, tonumber(ARGV[1]))
return {'OK', live_count(KEYS, ARGV[1]) - in_pool, tonumber(first[2] or -1), in_pool}
