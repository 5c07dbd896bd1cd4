-- backup_read: every key of one workshop as a DUMP payload with its expiry, in one step.
-- KEYS: none (the keys are found inside, by pattern: a single Redis, never a Cluster)
-- ARGV: prefix, now (unused), the prefix as a glob pattern (escaped) followed by '*',
--       a key to leave out (the record of the newest backup)
-- Returns: {server time (ms), key, expire-at (ms since the epoch, -1: none), payload, ...}
-- Invariant: one consistent view: no command of any client runs between the first key read
--   and the last, so a job is never taken half-moved between queues.
local pattern, skip = ARGV[3], ARGV[4]
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {now_ms}
for _, key in ipairs(redis.call('KEYS', pattern)) do
  if key ~= skip then
    local pttl = redis.call('PTTL', key)
    local payload = redis.call('DUMP', key)
    if payload then
      out[#out + 1] = key
      out[#out + 1] = pttl >= 0 and now_ms + pttl or -1
      out[#out + 1] = payload
    end
  end
end
return out
