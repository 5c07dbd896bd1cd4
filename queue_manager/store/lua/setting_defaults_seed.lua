-- setting_defaults_seed: write the built-in default settings into a new workshop, once.
-- KEYS: none (built from the prefix; see lib.lua)
-- ARGV: prefix, now, setting id, JSON value, setting id, JSON value, ...
-- Returns: 1 if they were written now, 0 if this workshop had them already.
-- Invariant: the built-in defaults are written at most once per workshop, so a default the
--   instructor changed or unset stays that way across restarts; one the instructor set before
--   the first seeding (a race with a starting server) is never overwritten.
local seeded = k('setting_defaults', 'seeded')
if redis.call('EXISTS', seeded) == 1 then return 0 end
for i = 3, #ARGV, 2 do
  redis.call('HSETNX', k('setting_defaults'), ARGV[i], ARGV[i + 1])
end
redis.call('SET', seeded, NOW)
return 1
