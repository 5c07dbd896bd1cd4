-- session_open: a login opens one session of an account.
-- KEYS: none (built from the prefix; see lib.lua)
-- ARGV: prefix, now, name, the password hash the login was checked against, session id,
--       expiry (seconds since the epoch), most sessions kept per account
-- Returns: 1 opened, 0 refused (no such account, or its password changed since the check)
-- Invariant: a session is opened only for the password just checked, so a reset that lands
--   between the check and this script is not undone by a login with the old password. Expired
--   sessions are dropped here; past the most kept, the one that expires first goes.
local name, checked, sid = ARGV[3], ARGV[4], ARGV[5]
local expires, most = tonumber(ARGV[6]), tonumber(ARGV[7])
local account = account_record(name)
if not account or account['hash'] ~= checked then return 0 end
local sessions, n = live_sessions(account)
while n >= most do
  local oldest = nil
  for id, at in pairs(sessions) do
    if oldest == nil or tonumber(at) < tonumber(sessions[oldest]) then oldest = id end
  end
  sessions[oldest], n = nil, n - 1
end
sessions[sid] = expires
save_account(name, account, sessions)
return 1
