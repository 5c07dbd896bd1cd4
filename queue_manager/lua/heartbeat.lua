-- heartbeat: a worker is alive; if it names the job it runs, renew that job's lease.
-- KEYS: none (built from the prefix; see lib.lua)
-- ARGV: prefix, now, worker id, lease seconds, job id ('' for none), attempt
-- Returns: {'ok'} | {'unknown_worker'} | {'lost', status} (the worker must stop that job:
--          cancelled, requeued after its lease expired, or finished)
-- Invariant: a lease is only extended for the worker that holds the job's current attempt.
local wid, lease, jid, attempt = ARGV[3], tonumber(ARGV[4]), ARGV[5], ARGV[6]
local wkey = k('worker', wid)
local state = redis.call('HGET', wkey, 'state')
if not state then return {'unknown_worker'} end
redis.call('HSET', wkey, 'seen', NOW)
redis.call('ZADD', k('workers'), now, wid)
if state == 'offline' then
  redis.call('HSET', wkey, 'state', 'online')
  emit('worker.online', nil, nil, wid, {})
end
if jid == '' then return {'ok'} end
local f = redis.call('HMGET', k('job', jid), 'status', 'worker', 'attempts')
if f[1] ~= 'running' or f[2] ~= wid or f[3] ~= attempt then return {'lost', f[1] or 'missing'} end
redis.call('ZADD', k('leases'), 'XX', now + lease, jid)
return {'ok'}
