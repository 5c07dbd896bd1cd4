-- announce: a room-wide push to every participant's page (core.events.ROOM_WIDE), optionally
--   keeping what a page opened later must still see, in the same step.
-- KEYS: none (built from the prefix; see lib.lua)
-- ARGV: prefix, now, event type ('workshop.*'), data (a JSON object, sent as it is), then
--       optionally a key name under the prefix and the string to keep there ('' deletes it)
-- Returns: {'ok', event id} | {'refused'} (not a workshop event type)
-- Invariant: the kept value and the announcement change together, so a page that reads the
--   kept value after noting the stream's position never misses nor reverses a change.
local kind, data, key, value = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
if string.sub(kind, 1, 9) ~= 'workshop.' then return {'refused'} end
if key and key ~= '' then
  if value == nil or value == '' then
    redis.call('DEL', k(key))
  else
    redis.call('SET', k(key), value)
  end
end
return {'ok', emit_json(kind, nil, nil, nil, data)}
