-- gallery: one page of the instructor's gallery (completed jobs with outputs), newest first.
-- KEYS: none (built from the prefix; see lib.lua)
-- ARGV: prefix, now, user ('' for everyone's), after (a job id from the previous page; '' for
--       the newest), limit
-- Returns: {'unknown'} (`after` is not in this gallery) |
--          {'ok', next job id or '', {{job, user, finished_at, outputs JSON, prompt JSON}, ...}}
-- Invariant: read in one step, so a page continues exactly after `after` however many jobs
--   finished meanwhile (they go to the top, before the first page).
local user, after, limit = ARGV[3], ARGV[4], tonumber(ARGV[5])
local key = user == '' and k('gallery') or k('user', user, 'gallery')
local start = 0
if after ~= '' then
  local rank = redis.call('ZREVRANK', key, after)
  if not rank then return {'unknown'} end
  start = rank + 1
end
local ids = redis.call('ZREVRANGE', key, start, start + limit)  -- one more: is there a next page
local rows = {}
for i = 1, math.min(#ids, limit) do
  local f = redis.call('HMGET', k('job', ids[i]), 'user', 'finished_at', 'outputs', 'prompt')
  if f[1] then  -- a job forgotten since (a reset room) is left out
    rows[#rows + 1] = {ids[i], f[1], f[2] or '0', f[3] or '[]', f[4] or '{}'}
  end
end
local nxt = ''
if #ids > limit then nxt = ids[limit] end
return {'ok', nxt, rows}
