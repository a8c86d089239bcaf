-- count_denial: count an acquire refused before it reached the seat table (the license is
-- suspended or expired, or its policy or e-mail domains do not admit the caller).
-- KEYS[7] usage   KEYS[8] origin   (the others unused: every script gets all eleven)
-- ARGV[1] this hour (UTC, YYYY-MM-DDTHH)   ARGV[2] the reason (shared/domain/usage.py)
-- returns 1 counted | 0 not counted: the table awaits its rebuild after a loss, which puts
--         the durable counters back (raising only): a count made before that would be lost
if needs_rebuild(KEYS) then
  return 0
end
count_denial(KEYS, ARGV[1], ARGV[2], nil)
return 1
