-- give_back: a worker returns a job handed to it early that never started (it was waiting in
-- that ComfyUI's own queue, and was deleted from it): taken back for a job the policy puts
-- first (take_back_for in lib.lua), or given up as the worker stops.
-- KEYS: none (built from the prefix; see lib.lua)
-- ARGV: prefix, now, job id, worker id, attempt, reason
-- Returns: {'ok'} | {'started'} (too late: it runs; the worker keeps it) | {'lost', status}
-- Invariant: the job is queued again exactly where it was (its seq in its user's FIFO), its
--   attempt is not counted (the hand-over never ran anything) and its user's place in the
--   round-robin is the one they had before the hand-over, so returning it changes no one's turn.
local jid, wid, attempt, reason = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local f = redis.call('HMGET', k('job', jid), 'status', 'worker', 'attempts', 'user', 'lane',
  'seq', 'started_at', 'prev_served', 'served')
if f[1] ~= 'running' or f[2] ~= wid or f[3] ~= attempt then return {'lost', f[1] or 'missing'} end
if (f[7] or '') ~= '' then
  redis.call('HSET', k('job', jid), 'takeback', '')
  return {'started'}
end
local user, lane, seq, prev = f[4], f[5], f[6], f[8] or ''
worker_drop(wid, jid)
transition(jid, user, 'running', 'queued', reason, wid, attempt)
redis.call('HINCRBY', k('job', jid), 'attempts', -1)
redis.call('HSET', k('job', jid), 'worker', '', 'progress', '', 'phase', '', 'claimed_at', '',
  'takeback', '')
-- the user's turn as it was before the hand-over (unless they were served again since),
-- then the job back in its place
local restore = redis.call('HGET', k('served'), user) == f[9]
if restore and prev ~= '' then redis.call('HSET', k('served'), user, prev) end
if restore and prev == '' then redis.call('HDEL', k('served'), user) end
for _, l in ipairs(restore and LANES or {}) do
  local score = prev
  if score == '' then
    local first = redis.call('ZRANGE', k('q', l, 'u', user), 0, 0, 'WITHSCORES')
    score = tostring(tonumber(first[2] or seq) - NEVER_SERVED)
  end
  redis.call('ZADD', k('q', l, 'users'), 'XX', score, user)
end
lane_add(lane, user, jid, seq)
emit('job.requeued', jid, user, wid, {reason = reason, attempt = tonumber(attempt),
  counted = false})
wake_idle()
return {'ok'}
