-- reorder: move a queued job to the front, or to another lane (priority change).
-- KEYS: none (built from the prefix; see lib.lua)
-- ARGV: prefix, now, job id, 'front' | 'lane', new lane (for 'lane')
-- Returns: {'ok'} | {'missing'} | {'not_queued', status}
-- Invariant: the job stays in exactly one lane; the front list only holds queued jobs, the
--   most recently moved with the lowest score.
local jid, what, new_lane = ARGV[3], ARGV[4], ARGV[5]
local f = redis.call('HMGET', k('job', jid), 'status', 'user', 'lane', 'seq')
local status, user, lane, seq = f[1], f[2], f[3], f[4]
if not status then return {'missing'} end
if status ~= 'queued' then return {'not_queued', status} end
if what == 'front' then
  local n = redis.call('INCR', k('front_ctr'))
  redis.call('ZADD', k('front'), -n, jid)
  emit('job.moved', jid, user, nil, {front = true})
  take_back_for(jid)
  return {'ok'}
end
local was_front = redis.call('ZSCORE', k('front'), jid)
lane_remove(lane, user, jid)
if was_front then redis.call('ZADD', k('front'), was_front, jid) end
lane_add(new_lane, user, jid, seq)
redis.call('HSET', k('job', jid), 'lane', new_lane)
redis.call('RPUSH', k('job', jid, 'tl'), cjson.encode(
  {at = NOW, to = 'queued', ['from'] = 'queued', reason = 'priority ' .. lane .. ' -> ' .. new_lane}))
emit('job.moved', jid, user, nil, {lane = new_lane, previous = lane})
take_back_for(jid)
return {'ok'}
