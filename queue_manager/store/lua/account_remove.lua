-- account_remove: forget an account, its password and its sessions.
-- KEYS: none (built from the prefix; see lib.lua)
-- ARGV: prefix, now, name, reason
-- Returns: 1 removed, 0 no such account
-- Invariant: the removal is announced in the same step, so the account's open sockets close.
local name, reason = ARGV[3], ARGV[4]
if redis.call('HDEL', k('accounts'), name) == 0 then return 0 end
signed_out(name, reason)
return 1
