-- heartbeat: a worker is alive; if it names the job it runs, renew that job's lease.
-- KEYS: none (built from the prefix; see lib.lua)
-- ARGV: prefix, now, worker id, job id ('' for none), attempt (the lease length is the
--       control hash's lease_seconds, the same one a claim uses)
-- Returns: {'ok'} | {'unknown_worker'} | {'lost', status} (the worker must stop that job:
--          cancelled, requeued after its lease expired, or finished)
-- Invariant: a lease is only extended for the worker that holds the job's current attempt.
local wid, jid, attempt = ARGV[3], ARGV[4], ARGV[5]
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
redis.call('ZADD', k('leases'), 'XX', now + tonumber(control('lease_seconds') or '30'), jid)
return {'ok'}
