-- configure: change a room-wide control (pause, mode, default limits) or one user's setting.
-- KEYS: none (built from the prefix; see lib.lua)
-- ARGV: prefix, now, user ('' for room-wide), then field/value pairs ('' value deletes a
--       per-user override so the room default applies again)
-- Returns: {'ok'}
-- Invariant: every change is announced as a 'control' event in the same step, which is what
--   wakes blocked claims after a resume, a raised limit or an unpaused user.
local user = ARGV[3]
local key = user == '' and k('control') or k('user', user, 'ctl')
local changed = {}
for i = 4, #ARGV, 2 do
  if ARGV[i + 1] == '' and user ~= '' then
    redis.call('HDEL', key, ARGV[i])
  else
    redis.call('HSET', key, ARGV[i], ARGV[i + 1])
  end
  changed[ARGV[i]] = ARGV[i + 1]
end
emit('control', nil, user, nil, changed)
wake_idle()
return {'ok'}
