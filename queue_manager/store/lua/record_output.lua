-- record_output: the queue manager stored one output file of a job attempt; note it on the job.
-- KEYS: none (built from the prefix; see lib.lua)
-- Outputs live in their own hash `job:<id>:files` (field `<attempt>:<reported name>`), apart
--   from the job hash and its prompt, so reading them never copies the prompt.
-- ARGV: prefix, now, job id, worker id, attempt, reported name (type/subfolder/filename as the
--       worker's ComfyUI named it), stored descriptor (JSON: filename, subfolder, type, size,
--       node_id, media, as written in the user's folder)
-- Returns: {'ok', descriptor} | {'exists', descriptor} | {'missing'} | {'lost', status}
-- Invariant: only the holder of the current attempt records outputs, and each reported name is
--   recorded once per attempt: a retried upload (its answer was lost) gets the first file's
--   descriptor back, so one attempt never leaves two copies of one output.
local jid, wid, attempt, name, descriptor = ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local key = k('job', jid)
local f = redis.call('HMGET', key, 'status', 'worker', 'attempts')
if not f[1] then return {'missing'} end
if f[1] ~= 'running' or f[2] ~= wid or f[3] ~= attempt then return {'lost', f[1]} end
local files = k('job', jid, 'files')
local field = attempt .. ':' .. name
local known = redis.call('HGET', files, field)
if known then return {'exists', known} end
local d = cjson.decode(descriptor)
d['n'] = redis.call('HLEN', files) + 1
d['attempt'] = tonumber(attempt)
local stored = cjson.encode(d)
redis.call('HSET', files, field, stored)
return {'ok', stored}
