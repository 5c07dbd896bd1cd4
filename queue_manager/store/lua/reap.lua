-- reap: requeue (or fail, past the attempt limit) every running job whose lease has expired,
-- and mark workers unseen for too long offline.
-- KEYS: none (built from the prefix; see lib.lua)
-- ARGV: prefix, now, worker timeout seconds, max jobs to handle in this call
-- Returns: {requeued job ids..., '|', failed job ids...}
-- Invariant: each expired lease is handled once: it leaves the lease set in the same step that
--   requeues the job, so several reapers (one per queue-manager process) never requeue twice.
local timeout, max_n = tonumber(ARGV[3]), tonumber(ARGV[4])
local requeued, failed = {}, {}
for _, jid in ipairs(redis.call('ZRANGEBYSCORE', k('leases'), '-inf', now, 'LIMIT', 0, max_n)) do
  redis.call('ZREM', k('leases'), jid)
  local worker = redis.call('HGET', k('job', jid), 'worker') or '?'
  local status = expire(jid, 'lease expired (worker ' .. worker .. ' stopped reporting)')
  if status == 'queued' then requeued[#requeued + 1] = jid end
  if status == 'failed' then failed[#failed + 1] = jid end
end
for _, wid in ipairs(redis.call('ZRANGEBYSCORE', k('workers'), '-inf', now - timeout)) do
  if redis.call('HGET', k('worker', wid), 'state') == 'online' then
    redis.call('HSET', k('worker', wid), 'state', 'offline')
    emit('worker.lost', nil, nil, wid, {})
  end
end
local out = requeued
out[#out + 1] = '|'
for _, jid in ipairs(failed) do out[#out + 1] = jid end
return out
