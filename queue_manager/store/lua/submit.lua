-- submit: queue a new job.
-- KEYS: none (built from the prefix; see lib.lua)
-- ARGV: prefix, now, job id, user, lane, requirement signature, node types (JSON list),
--       models (JSON list), the longest and the most think times kept (store/runtimes.py),
--       then field/value pairs for the job hash (prompt, client_id, ...)
-- Returns: {'ok', seq, runnable} | {'exists', owner, seq} (a retried submit) | {'limit', max}
--   runnable is 1 when a known (online or offline) worker has what the job needs; 2 when no
--   worker is known at all (the hold reason is set here); else 0: the caller then records a
--   readable hold reason.
-- Invariant: a job is in exactly one user queue of exactly one lane while it is queued, the
--   user is in that lane's round-robin, and queued[user] counts the user's queued jobs; a user
--   never has more than their max_queued jobs waiting.
local jid, user, lane, sig = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local nodes_json, models_json = ARGV[7], ARGV[8]
if redis.call('EXISTS', k('job', jid)) == 1 then
  local f = redis.call('HMGET', k('job', jid), 'user', 'seq')
  return {'exists', f[1], f[2]}
end
local max_queued = limit(user, 'max_queued')
local queued_before = tonumber(redis.call('HGET', k('queued'), user) or '0')
if queued_before >= max_queued then
  return {'limit', tostring(max_queued)}
end
-- How soon people come back: a Run from someone with nothing queued or running is one more
-- sample of the time since their last result (rt:last, written when a job ends).
if queued_before == 0 and tonumber(redis.call('HGET', k('running'), user) or '0') == 0 then
  local last = redis.call('HGET', k('rt', 'last'), user)
  local think = last and now - tonumber(string.match(last, '^%S+'))
  if think and think >= 0 and think <= tonumber(ARGV[9]) then
    redis.call('LPUSH', k('rt', 'think'), string.format('%.3f', think))
    redis.call('LTRIM', k('rt', 'think'), 0, tonumber(ARGV[10]) - 1)
  end
end
if redis.call('EXISTS', k('req', sig, 'nodes')) == 0 then
  local nodes = cjson.decode(nodes_json)
  if #nodes > 0 then redis.call('SADD', k('req', sig, 'nodes'), unpack(nodes)) end
  local models = cjson.decode(models_json)
  if #models > 0 then redis.call('SADD', k('req', sig, 'models'), unpack(models)) end
end
local seq = redis.call('INCR', k('seq'))
local fields = {'id', jid, 'user', user, 'lane', lane, 'seq', seq, 'attempts', 0,
  'req', sig, 'node_types', nodes_json, 'models', models_json, 'created_at', NOW}
for i = 11, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', k('job', jid), unpack(fields))
transition(jid, user, nil, 'queued', 'submitted')
lane_add(lane, user, jid, seq)
redis.call('ZADD', k('user', user, 'jobs'), seq, jid)
emit('job.queued', jid, user, nil, {lane = lane, seq = seq})
-- An idle worker has nothing else it could run (or it would not be idle): if it can run this
-- job, the policy's next job for it is this one. Hand it over directly, in this same step.
if control('paused') ~= '1' and not blocked(user) then
  for _, wid in ipairs(redis.call('SMEMBERS', k('idle'))) do
    if redis.call('HGET', k('worker', wid), 'state') == 'online' and fits(wid, sig) then
      redis.call('SREM', k('idle'), wid)
      redis.call('RPUSH', k('worker', wid, 'inbox'), take(jid, wid))
      return {'ok', seq, 1}
    end
  end
end
take_back_for(jid)  -- an instructor's job does not wait behind a participant's handed early
local workers = redis.call('ZRANGE', k('workers'), 0, -1)
if #workers == 0 then
  redis.call('HSET', k('job', jid), 'hold', 'waiting for a GPU worker to connect')
  return {'ok', seq, 2}
end
local runnable = 0
for _, wid in ipairs(workers) do
  local state = redis.call('HGET', k('worker', wid), 'state')
  if (state == 'online' or state == 'offline') and fits(wid, sig) then
    runnable = 1
    break
  end
end
return {'ok', seq, runnable}
