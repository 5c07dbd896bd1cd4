-- progress: a worker reports a phase or progress of the job it holds (started, a step done).
-- KEYS: none (built from the prefix; see lib.lua)
-- ARGV: prefix, now, job id, worker id, attempt, event type (e.g. 'job.started', 'job.progress'),
--       event data (JSON), then field/value pairs to store on the job (e.g. progress, started_at)
-- Returns: {'ok', event id} | {'lost', status}
-- Invariant: only the holder of the current attempt writes to a running job, so a worker that
--   lost its lease cannot overwrite the progress of the attempt that replaced it.
local jid, wid, attempt, kind, data = ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local f = redis.call('HMGET', k('job', jid), 'status', 'worker', 'attempts', 'user')
if f[1] ~= 'running' or f[2] ~= wid or f[3] ~= attempt then return {'lost', f[1] or 'missing'} end
if #ARGV >= 9 then
  local fields = {}
  for i = 8, #ARGV do fields[#fields + 1] = ARGV[i] end
  redis.call('HSET', k('job', jid), unpack(fields))
end
return {'ok', emit(kind, jid, f[4], wid, cjson.decode(data))}
