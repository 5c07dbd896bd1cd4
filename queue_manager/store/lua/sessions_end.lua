-- sessions_end: logout, "sign out everywhere" for one account, or for the whole room.
-- KEYS: none (built from the prefix; see lib.lua)
-- ARGV: prefix, now, reason, name ('' for every participant), session id ('' for all of the
--       account's sessions)
-- Returns: the names whose sessions ended, or false when the named account does not exist
-- Invariant: a session ends in every process at once (each request reads the record), and
--   its end is announced in the same step, which closes its open sockets. Instructors keep
--   theirs in a room-wide sign-out: the dashboard that asked for it must stay.
local reason, name, sid = ARGV[3], ARGV[4], ARGV[5]

local function end_sessions(who, account)
  local sessions, n = live_sessions(account)
  if sid ~= '' then
    if sessions[sid] == nil then return false end
    sessions[sid] = nil
  elseif n == 0 then
    return false
  else
    sessions = {}
  end
  save_account(who, account, sessions)
  signed_out(who, reason)
  return true
end

if name ~= '' then
  local account = account_record(name)
  if not account then return false end
  if end_sessions(name, account) then return {name} end
  return {}
end
local ended, flat = {}, redis.call('HGETALL', k('accounts'))
for i = 1, #flat, 2 do
  local account = cjson.decode(flat[i + 1])
  if account['role'] == 'participant' and end_sessions(flat[i], account) then
    ended[#ended + 1] = flat[i]
  end
end
return ended
