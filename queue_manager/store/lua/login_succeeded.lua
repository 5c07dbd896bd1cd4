-- login_succeeded: the password checked after login_attempt.lua was right.
-- KEYS: none (built from the prefix; see lib.lua)
-- ARGV: prefix, now, name, address bucket
-- Returns: 1
-- Invariant: the (account, address) count starts again; the per-address and per-account
--   counts only lose this attempt's own charge, so logging into one's own account never
--   clears what someone else's guesses added.
local name, addr = ARGV[3], ARGV[4]
redis.call('DEL', k('login', 'pair', name, addr))
for _, key in ipairs({k('login', 'address', addr), k('login', 'account', name)}) do
  if tonumber(redis.call('HGET', key, 'n') or '0') > 0 then redis.call('HINCRBY', key, 'n', -1) end
end
return 1
