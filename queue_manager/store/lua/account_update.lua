-- account_update: a new password or a new role, which ends every session of the account.
-- KEYS: none (built from the prefix; see lib.lua)
-- ARGV: prefix, now, name, reason, then field/value pairs ('hash' = argon2 hash, 'role')
-- Returns: 1 changed, 0 no such account
-- Invariant: credentials and sessions change together: no session opened under the old
--   password or role outlives the change, in any process; sockets are told in the same step.
local name, reason = ARGV[3], ARGV[4]
local account = account_record(name)
if not account then return 0 end
for i = 5, #ARGV, 2 do account[ARGV[i]] = ARGV[i + 1] end
save_account(name, account, {})
signed_out(name, reason)
return 1
