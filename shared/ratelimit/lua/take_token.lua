-- take_token: charge one request to a rate limit (GCRA: a token bucket without a timer).
-- KEYS[1] the limit's key: rl:{<scope>:<id>}, its own slot (one key per call, cluster-safe)
-- ARGV[1] now (ms)   ARGV[2] emission interval: ms per request at the sustained rate
-- ARGV[3] burst: requests allowed at once on an idle key
-- returns {1, 0} allowed | {0, retry after (ms)} refused
-- The key stores the "theoretical arrival time" (TAT) and expires once it is in the
-- past, so idle callers cost no memory. Times are integer milliseconds.
local now, interval, burst = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tolerance = interval * (burst - 1)
local tat = tonumber(redis.call('GET', KEYS[1]) or 0)
if tat < now then
  tat = now
end
if tat - now > tolerance then
  return {0, tat - now - tolerance}
end
redis.call('SET', KEYS[1], tat + interval, 'PX', tat + interval - now + 1)
return {1, 0}
