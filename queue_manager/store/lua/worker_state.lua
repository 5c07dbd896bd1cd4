-- worker_state: an admin drains, resumes or removes a worker; a stopping agent leaves.
-- KEYS: none (built from the prefix; see lib.lua)
-- ARGV: prefix, now, worker id, 'draining' | 'online' | 'removed' | 'left'
-- Returns: {'ok', requeued job id or ''} | {'unknown_worker'}
-- Invariant: a draining worker keeps its job and claims no more; a removed worker is gone from
--   every worker structure and its job (if any) is back in the queue, so nothing waits on it.
--   'left' is 'removed' asked by the worker itself as it stops: a job it holds is one it never
--   learnt of (its claim's answer was lost as it stopped), so the job goes straight back. A job
--   handed to it early that never started goes back uncounted (return_unstarted).
local wid, state = ARGV[3], ARGV[4]
local wkey = k('worker', wid)
local job = redis.call('HGET', wkey, 'job')
if not job then return {'unknown_worker'} end
if state ~= 'removed' and state ~= 'left' then
  redis.call('HSET', wkey, 'state', state)
  if state ~= 'online' then
    -- a draining worker's waiting claim must return and learn it
    redis.call('SREM', k('idle'), wid)
    redis.call('RPUSH', k('worker', wid, 'inbox'), 'wake')
  end
  emit('worker.' .. state, nil, nil, wid, {})
  return {'ok', ''}
end
local requeued = ''
local why = 'worker ' .. wid .. ' ' .. state
-- a job handed early that never started goes back uncounted, where it was; the rest as a lost
-- lease would (the attempt counts)
local early = redis.call('HGET', wkey, 'next') or ''
if early ~= '' then
  local attempt = redis.call('HGET', k('job', early), 'attempts') or ''
  if return_unstarted(early, wid, attempt, why .. ' before it started (attempt not counted)')
      == 'ok' then
    requeued, early = early, ''
  end
end
for _, jid in ipairs({early, job}) do
  if jid ~= '' and expire(jid, why) == 'queued' then requeued = jid end
end
redis.call('DEL', wkey, k('worker', wid, 'nodes'), k('worker', wid, 'models'),
  k('worker', wid, 'fit'))
redis.call('ZREM', k('workers'), wid)
redis.call('SREM', k('idle'), wid)
redis.call('SREM', k('early'), wid)
redis.call('DEL', k('worker', wid, 'inbox'))
redis.call('RPUSH', k('worker', wid, 'inbox'), 'wake')  -- a waiting claim returns and learns it
emit('worker.removed', nil, nil, wid, {})
return {'ok', requeued}
