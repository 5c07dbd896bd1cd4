-- claim: choose the next job this worker can run under the policy, mark it running, lease it.
-- KEYS: none (built from the prefix; see lib.lua)
-- ARGV: prefix, now, worker id, '1' to wait (become idle when nothing is claimable) or '0'
-- Returns: {'ok', job JSON} (see take() in lib.lua) | {'none'} | {'paused'}
--          | {'unknown_worker'} | {'unavailable', state}
--          | {'stopped'} (waiting only: the worker asked to end this wait before it began)
-- Invariant: a job is handed out by exactly one claim per attempt: it leaves every queue
--   structure and gains a lease in the same step. Order follows queue_manager/scheduling.py:
--   front list, then lanes in order; inside a lane the least recently served user (fair mode)
--   or the oldest job (fifo mode) whose user is neither paused nor at their running limit and
--   whose node types and models this worker has. Serving stamps the user with a fresh number.
--   A job already handed to this worker's inbox (by submit) is returned first. A waiting
--   worker that gets nothing is idle in the same step, so no wake-up can fall in between.
local wid, wait = ARGV[3], ARGV[4] == '1'
local wstate = redis.call('HGET', k('worker', wid), 'state')
if not wstate then return {'unknown_worker'} end
local handed, stopped = inbox_next(wid)
if handed then return {'ok', handed} end
if stopped and wait then return {'stopped'} end
if wstate ~= 'online' then return {'unavailable', wstate} end

local function nothing(reason)
  if wait then
    redis.call('SADD', k('idle'), wid)
    if reason == 'none' then take_back_for_idle(wid) end  -- given back, it wakes us
  end
  return {reason}
end

if control('paused') == '1' then return nothing('paused') end

-- 1. jobs moved to the front
for _, jid in ipairs(redis.call('ZRANGE', k('front'), 0, -1)) do
  local f = redis.call('HMGET', k('job', jid), 'user', 'req')
  if not blocked(f[1]) and fits(wid, f[2]) then return {'ok', take(jid, wid)} end
end

-- 2. lanes in order
local fifo = control('mode') == 'fifo'
for _, lane in ipairs(LANES) do
  local best, best_seq = nil, nil
  for _, user in ipairs(redis.call('ZRANGE', k('q', lane, 'users'), 0, -1)) do
    if not blocked(user) then
      local q = redis.call('ZRANGE', k('q', lane, 'u', user), 0, -1, 'WITHSCORES')
      for i = 1, #q, 2 do
        if fits(wid, redis.call('HGET', k('job', q[i]), 'req')) then
          if not fifo then return {'ok', take(q[i], wid)} end
          local seq = tonumber(q[i + 1])
          if best_seq == nil or seq < best_seq then best, best_seq = q[i], seq end
          break
        end
      end
    end
  end
  if best then return {'ok', take(best, wid)} end
end
return nothing('none')
