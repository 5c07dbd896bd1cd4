-- snapshot: read the whole queue as the claim script sees it (read-only), for positions.
-- KEYS: none (built from the prefix; see lib.lua)
-- ARGV: prefix, now
-- Returns: {mode, {front job, user, ...}, {paused users...},
--           {lane name, {user, served score, {job, seq, job, seq, ...}}, ...} per lane}
-- Invariant: one consistent view: nothing is claimed or submitted half-way through it.
local front = {}
for _, jid in ipairs(redis.call('ZRANGE', k('front'), 0, -1)) do
  front[#front + 1] = jid
  front[#front + 1] = redis.call('HGET', k('job', jid), 'user')
end
local paused, seen = {}, {}
local lanes = {}
for _, lane in ipairs(LANES) do
  local users = {}
  local us = redis.call('ZRANGE', k('q', lane, 'users'), 0, -1, 'WITHSCORES')
  for i = 1, #us, 2 do
    local user = us[i]
    users[#users + 1] = {user, us[i + 1],
      redis.call('ZRANGE', k('q', lane, 'u', user), 0, -1, 'WITHSCORES')}
    if not seen[user] then
      seen[user] = true
      if user_setting(user, 'paused') == '1' then paused[#paused + 1] = user end
    end
  end
  lanes[#lanes + 1] = {lane, users}
end
return {control('mode') or 'fair', front, paused, lanes}
