-- reject: a queued job that turns out not to be runnable at all (its prompt fails ComfyUI's
--   validation once a GPU's catalogue is known) fails without ever reaching a GPU.
-- KEYS: none (built from the prefix; see lib.lua)
-- ARGV: prefix, now, job id, error (JSON: type, message, node_id, node_type, details)
-- Returns: {'ok'} | {'missing'} | {'not_queued', status}
-- Invariant: only a queued job is rejected (one already claimed is the GPU's to judge); it
--   leaves every queue structure in the same step, counts as failed, and is announced.
local jid, payload = ARGV[3], ARGV[4]
local f = redis.call('HMGET', k('job', jid), 'status', 'user', 'lane')
local status, user, lane = f[1], f[2], f[3]
if not status then return {'missing'} end
if status ~= 'queued' then return {'not_queued', status} end
lane_remove(lane, user, jid)
local err = cjson.decode(payload)
transition(jid, user, 'queued', 'failed', err['message'] or 'rejected')
redis.call('HSET', k('job', jid), 'finished_at', NOW, 'error', payload)
redis.call('HDEL', k('job', jid), 'unvalidated')
emit('job.failed', jid, user, nil, {error = err, was = 'queued'})
return {'ok'}
