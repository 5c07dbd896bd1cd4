-- give_back: a worker returns a job handed to it early that never started (it was waiting in
-- that ComfyUI's own queue, and was deleted from it): taken back for a job the policy puts
-- first (take_back_for in lib.lua), or given up as the worker stops.
-- KEYS: none (built from the prefix; see lib.lua)
-- ARGV: prefix, now, job id, worker id, attempt, reason
-- Returns: {'ok'} | {'started'} (too late: it runs; the worker keeps it) | {'lost', status}
-- Invariant: the job is queued again exactly where it was, uncounted, no one's turn changed
--   (return_unstarted in lib.lua).
local status = return_unstarted(ARGV[3], ARGV[4], ARGV[5], ARGV[6])
if status == 'ok' or status == 'started' then return {status} end
return {'lost', status}
