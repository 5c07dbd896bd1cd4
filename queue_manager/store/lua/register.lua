-- register: a worker (re)joins with what its ComfyUI has.
-- KEYS: none (built from the prefix; see lib.lua)
-- ARGV: prefix, now, worker id, node types (JSON list), models (JSON list, or 'null' when the
--       worker does not report models), info (JSON: name, GPU, VRAM, ...)
-- Returns: {'ok', state, requeued job id or ''}
-- Invariant: the worker's capability sets are exactly what it last reported and its fit cache
--   is empty; a worker registering again does not hold a job any more (it restarted), so a job
--   still leased to it goes back to the queue now rather than when the lease runs out.
--   A worker an admin drained stays draining.
local wid, nodes_json, models_json, info = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local wkey = k('worker', wid)
local old = redis.call('HMGET', wkey, 'state', 'job', 'next')
local requeued = ''
for i = 3, 2, -1 do  -- the early hand-over first: it goes back behind the one that ran
  if old[i] and old[i] ~= '' then
    if expire(old[i], 'worker ' .. wid .. ' restarted') == 'queued' then requeued = old[i] end
  end
end
redis.call('DEL', k('worker', wid, 'nodes'), k('worker', wid, 'models'), k('worker', wid, 'fit'),
  k('worker', wid, 'inbox'))
redis.call('SREM', k('idle'), wid)
redis.call('SREM', k('early'), wid)
local nodes = cjson.decode(nodes_json)
for i = 1, #nodes, 5000 do
  redis.call('SADD', k('worker', wid, 'nodes'), unpack(nodes, i, math.min(i + 4999, #nodes)))
end
local reports_models = models_json ~= 'null'
if reports_models then
  local models = cjson.decode(models_json)
  for i = 1, #models, 5000 do
    redis.call('SADD', k('worker', wid, 'models'), unpack(models, i, math.min(i + 4999, #models)))
  end
end
local state = old[1] == 'draining' and 'draining' or 'online'
redis.call('HSET', wkey, 'id', wid, 'state', state, 'info', info, 'job', '', 'next', '',
  'reports_models', reports_models and '1' or '0', 'seen', NOW)
if not old[1] then redis.call('HSET', wkey, 'joined', NOW, 'done', 0, 'failed', 0) end
redis.call('ZADD', k('workers'), now, wid)
emit('worker.joined', nil, nil, wid, {state = state})
return {'ok', state, requeued}
