-- release_lock: delete a lock only if we still hold it (compare-and-delete).
-- KEYS[1] the lock   ARGV[1] our fencing token
-- returns 1 if released, 0 if it had already passed to someone else (or expired)
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
