-- mark_verified: leases the sweep found in the durable record need no further check.
-- KEYS[6] unverified   (the others unused: every script gets all eleven)
-- ARGV session ids
-- returns how many were still unverified
return redis.call('ZREM', KEYS[6], unpack(ARGV))
