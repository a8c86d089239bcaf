-- mark_recovered: the sweep walked every active session back into this Redis process.
-- KEYS[1] the recovery epoch   ARGV[1] the run id the walk began in
-- returns 1, or 0 (nothing set) if Redis is another process now: the walk must be redone
if run_id() ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1])
return 1
