-- endpoint_status: the dispatcher says how a push endpoint is doing.
-- KEYS: none (built from the prefix; see lib.lua)
-- ARGV: prefix, now, endpoint name, then field/value pairs (phase, reason, since, running,
--       cold_starts)
-- Returns: {'ok'}
-- Invariant: every change is announced as an 'endpoint' event in the same step, so the
--   dashboards show it at once.
local name = ARGV[3]
local fields = {}
for i = 4, #ARGV, 2 do fields[#fields + 1] = ARGV[i]; fields[#fields + 1] = ARGV[i + 1] end
redis.call('HSET', k('endpoint', name, 'status'), unpack(fields))
emit('endpoint', nil, nil, nil, {name = name})
return {'ok'}
