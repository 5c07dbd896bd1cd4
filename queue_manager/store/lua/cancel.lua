-- cancel: take a queued job out of the queue, or stop a running one.
-- KEYS: none (built from the prefix; see lib.lua)
-- ARGV: prefix, now, job id, reason (who cancelled)
-- Returns: {'ok', previous status, worker} | {'missing'} | {'final', status}
-- Invariant: a cancelled job is in no queue structure and holds no lease; its worker learns
--   it from a signal, the 'job.cancelled' event or its next heartbeat, and its later reports are ignored.
local jid, reason = ARGV[3], ARGV[4]
local f = redis.call('HMGET', k('job', jid), 'status', 'user', 'lane', 'worker', 'attempts')
local status, user, lane, worker, attempts = f[1], f[2], f[3], f[4] or '', f[5]
if not status then return {'missing'} end
if status ~= 'queued' and status ~= 'running' then return {'final', status} end
if status == 'queued' then
  lane_remove(lane, user, jid)
else
  worker_drop(worker, jid)
  signal(worker, 'stop', jid)  -- the agent stops it now rather than at its next heartbeat
end
transition(jid, user, status, 'cancelled', reason, worker, status == 'running' and attempts or nil)
redis.call('HSET', k('job', jid), 'finished_at', NOW,
  'error', cjson.encode({type = 'cancelled', message = reason}))
emit('job.cancelled', jid, user, worker, {was = status, reason = reason})
if status == 'running' then wake_idle() end
return {'ok', status, worker}
