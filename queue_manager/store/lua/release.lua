-- release: a job handed to a worker could not be delivered to it (its claim was cancelled);
-- put it back in the queue now instead of when its lease runs out.
-- KEYS: none (built from the prefix; see lib.lua)
-- ARGV: prefix, now, job id, worker id, attempt, reason
-- Returns: {status after}
-- Invariant: only the holder's current attempt is released; the attempt still counts.
local jid, wid, attempt, reason = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local f = redis.call('HMGET', k('job', jid), 'status', 'worker', 'attempts')
if f[1] ~= 'running' or f[2] ~= wid or f[3] ~= attempt then return {f[1] or 'missing'} end
return {expire(jid, reason)}
