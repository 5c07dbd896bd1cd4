-- claim: choose the next job this worker can run under the policy, mark it running, lease it.
-- KEYS: none (built from the prefix; see lib.lua)
-- ARGV: prefix, now, worker id, lease seconds
-- Returns: {'ok', user, lane, attempt, client_id, prompt, extra_data, created_at} | {'none'}
--          | {'paused'}
--          | {'unknown_worker'} | {'unavailable', state}
-- Invariant: a job is handed out by exactly one claim per attempt: it leaves every queue
--   structure and gains a lease in the same step. Order follows queue_manager/scheduling.py:
--   front list, then lanes in order; inside a lane the least recently served user (fair mode)
--   or the oldest job (fifo mode) whose user is neither paused nor at their running limit and
--   whose node types and models this worker has. Serving stamps the user with a fresh number.
local wid, lease = ARGV[3], tonumber(ARGV[4])
local wstate = redis.call('HGET', k('worker', wid), 'state')
if not wstate then return {'unknown_worker'} end
if wstate ~= 'online' then return {'unavailable', wstate} end
if control('paused') == '1' then return {'paused'} end

local blocked_cache = {}
local function blocked(user)
  local b = blocked_cache[user]
  if b == nil then
    b = user_setting(user, 'paused') == '1'
      or tonumber(redis.call('HGET', k('running'), user) or '0') >= limit(user, 'max_running')
    blocked_cache[user] = b
  end
  return b
end


local function take(jid)
  local f = redis.call('HMGET', k('job', jid), 'user', 'lane')
  local user, lane = f[1], f[2]
  lane_remove(lane, user, jid)
  local stamp = redis.call('INCR', k('served_ctr'))
  redis.call('HSET', k('served'), user, stamp)
  for _, l in ipairs(LANES) do
    redis.call('ZADD', k('q', l, 'users'), 'XX', stamp, user)
  end
  local attempt = redis.call('HINCRBY', k('job', jid), 'attempts', 1)
  transition(jid, user, 'queued', 'running', 'claimed', wid, attempt)
  redis.call('HSET', k('job', jid), 'worker', wid, 'claimed_at', NOW, 'hold', '')
  redis.call('ZADD', k('leases'), now + lease, jid)
  redis.call('HSET', k('worker', wid), 'job', jid)
  emit('job.claimed', jid, user, wid, {attempt = attempt})
  local out = redis.call('HMGET', k('job', jid), 'user', 'lane', 'attempts', 'client_id', 'prompt',
    'extra_data', 'created_at')
  table.insert(out, 1, jid)
  table.insert(out, 1, 'ok')
  return out
end

-- 1. jobs moved to the front
for _, jid in ipairs(redis.call('ZRANGE', k('front'), 0, -1)) do
  local f = redis.call('HMGET', k('job', jid), 'user', 'req')
  if not blocked(f[1]) and fits(wid, f[2]) then return take(jid) end
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
          if not fifo then return take(q[i]) end
          local seq = tonumber(q[i + 1])
          if best_seq == nil or seq < best_seq then best, best_seq = q[i], seq end
          break
        end
      end
    end
  end
  if best then return take(best) end
end
return {'none'}
