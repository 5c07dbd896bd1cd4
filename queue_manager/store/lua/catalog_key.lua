-- catalog_key: what the room's merged node catalogue depends on, in one read: the catalogue
-- version (bumped at each upload) and every known worker's state.
-- ARGV: prefix, now
-- Returns: {version, worker id, state, worker id, state, ...}
local out = {redis.call('GET', k('catalog_version')) or '0'}
for _, wid in ipairs(redis.call('ZRANGE', k('workers'), 0, -1)) do
  local state = redis.call('HGET', k('worker', wid), 'state')
  if state then
    out[#out + 1] = wid
    out[#out + 1] = state
  end
end
return out
