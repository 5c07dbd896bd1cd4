-- heads: a user's jobs, oldest first, without what they run: what the page's lists show
-- (ComfyUI's /api/jobs, the workshop panel), in one reply whatever the user's history.
-- ARGV: prefix, now, user
-- Returns: one flat field/value list per job (store/jobs.py head_from_fields). A job stored
--   before `workflow_id` existed keeps its extra_data, which names its workflow.
local LEFT_OUT = {prompt = true, extra_data = true, node_types = true, models = true,
  targets = true, preview = true}
local out = {}
for _, jid in ipairs(redis.call('ZRANGE', k('user', ARGV[3], 'jobs'), 0, -1)) do
  local flat, head, named, extra = redis.call('HGETALL', k('job', jid)), {}, false, '{}'
  for i = 1, #flat, 2 do
    local name = flat[i]
    if name == 'workflow_id' then named = true end
    if name == 'extra_data' then extra = flat[i + 1] end
    if not LEFT_OUT[name] then
      head[#head + 1] = name
      head[#head + 1] = flat[i + 1]
    end
  end
  if #head > 0 then
    if not named then
      head[#head + 1] = 'extra_data'
      head[#head + 1] = extra
    end
    out[#out + 1] = head
  end
end
return out
