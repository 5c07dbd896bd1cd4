-- history_clear: forget finished jobs, for the next workshop (`comfy-workshop room reset`).
-- KEYS: none (built from the prefix; see lib.lua)
-- ARGV: prefix, now, 'jobs', job id... | prefix, now, 'end'
-- Returns: 'jobs': how many of the given jobs were forgotten;
--          'end': {queued jobs, running jobs} left in the room (counted before clearing)
-- Invariant: a queued or running job is never touched, whatever the ids say: only completed,
--   failed and cancelled jobs go, each with its timeline, its outputs record, its place in its
--   user's list and in the gallery, and its user's counters. 'end' clears the room-wide
--   records of finished jobs (counts, recent failures, the event log, the output shown to
--   everyone); the fair-share stamps only when nothing is queued or running, since queued
--   jobs are ordered by them.
local mode = ARGV[3]

local function total(key)
  local n = 0
  for _, v in ipairs(redis.call('HVALS', key)) do n = n + tonumber(v) end
  return n
end

if mode == 'jobs' then
  local forgotten = 0
  for i = 4, #ARGV do
    local jid = ARGV[i]
    local f = redis.call('HMGET', k('job', jid), 'status', 'user')
    local status, user = f[1], f[2]
    if status == 'completed' or status == 'failed' or status == 'cancelled' then
      redis.call('DEL', k('job', jid), k('job', jid, 'tl'), k('job', jid, 'files'))
      redis.call('ZREM', k('gallery'), jid)
      if user then
        redis.call('ZREM', k('user', user, 'jobs'), jid)
        redis.call('ZREM', k('user', user, 'gallery'), jid)
        redis.call('DEL', k('user', user, 'stats'))
      end
      forgotten = forgotten + 1
    end
  end
  return forgotten
end

local queued, running = total(k('queued')), total(k('running'))
redis.call('HDEL', k('stats'), 'completed', 'failed', 'cancelled')
redis.call('DEL', k('failures'), k('showcase'))
redis.call('XTRIM', k('events'), 'MAXLEN', 0)  -- keeps the stream's last id: readers go on
if queued == 0 and running == 0 then
  redis.call('DEL', k('served'))
end
return {queued, running}
