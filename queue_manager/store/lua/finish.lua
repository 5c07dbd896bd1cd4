-- finish: a worker reports the end of the job it holds: completed or failed.
-- KEYS: none (built from the prefix; see lib.lua)
-- ARGV: prefix, now, job id, worker id, attempt, 'completed' | 'failed', error (JSON, when
--       failed; '' when completed)
-- Returns: {'ok'} | {'missing'} | {'lost', status}
-- Invariant: only the worker holding the current attempt's lease can finish a job; a late
--   report from a worker whose lease expired (the job was requeued or finished elsewhere) or
--   whose job was cancelled changes nothing but a line in the timeline, so a job finishes
--   exactly once; the same report again from the attempt that finished it (its answer lost)
--   is answered ok and changes nothing. A completed job's
--   outputs are the files recorded for its finishing attempt (record_output.lua), in upload order:
--   what the worker says at the end adds nothing.
local jid, wid, attempt, outcome, payload = ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local f = redis.call('HMGET', k('job', jid), 'status', 'worker', 'attempts', 'user')
if not f[1] then return {'missing'} end
if f[1] == outcome and f[2] == wid and f[3] == attempt then
  -- This very attempt ended it already: the worker asks again because the answer was lost
  -- (the queue manager restarted in between). Nothing to do, nothing to note.
  return {'ok'}
end
if f[1] ~= 'running' or f[2] ~= wid or f[3] ~= attempt then
  -- Said in the timeline (the status stays): a result arrived from an attempt that had lost
  -- the job (requeued, cancelled, finished elsewhere), and was discarded.
  local note = {at = NOW, to = f[1], ['from'] = f[1], worker = wid, attempt = tonumber(attempt),
    reason = 'late ' .. outcome .. ' result of attempt ' .. attempt .. ' from ' .. wid ..
      ' discarded (the job is ' .. f[1] .. ')'}
  redis.call('RPUSH', k('job', jid, 'tl'), cjson.encode(note))
  return {'lost', f[1]}
end
local user = f[4]
transition(jid, user, 'running', outcome, outcome == 'completed' and 'finished' or 'error', wid,
  attempt)
if outcome == 'completed' then
  local outputs = attempt_outputs(jid, attempt)
  redis.call('HSET', k('job', jid), 'finished_at', NOW, 'outputs', outputs)
  if outputs ~= '[]' then  -- the instructor's gallery (gallery.lua), newest first
    redis.call('ZADD', k('gallery'), now, jid)
    redis.call('ZADD', k('user', user, 'gallery'), now, jid)
  end
else
  redis.call('HSET', k('job', jid), 'finished_at', NOW, 'error', payload)
end
redis.call('HDEL', k('job', jid), 'preview', 'preview_mime')
worker_drop(wid, jid)
redis.call('HINCRBY', k('worker', wid), outcome == 'completed' and 'done' or 'failed', 1)
local claimed = tonumber(redis.call('HGET', k('job', jid), 'claimed_at') or NOW)
local data = {attempt = tonumber(attempt), ran = now - claimed}
if outcome == 'failed' then data['error'] = cjson.decode(payload) end
emit('job.' .. outcome, jid, user, wid, data)
wake_idle()  -- the user's running slot is free: one of their queued jobs may be claimable now
return {'ok'}
