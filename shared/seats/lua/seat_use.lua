-- seat_use: how many seats of one license count now, for administrators (reads only; no
-- generation or origin check: a view, never a decision).
-- KEYS[1..11] (see the prelude)   ARGV[1] now (ms)
-- returns {seats of max seats counted (every live lease and hold but the CI pool's),
--          seats of the CI pool held}
local in_pool = pool_use(KEYS, tonumber(ARGV[1]))
return {live_count(KEYS, ARGV[1]) - in_pool, in_pool}
