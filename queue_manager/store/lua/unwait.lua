-- unwait: a waiting worker stops waiting (its long poll ended); it may have been handed a job
-- in the meantime, which it must take now rather than leave in its inbox.
-- KEYS: none (built from the prefix; see lib.lua)
-- ARGV: prefix, now, worker id
-- Returns: {'ok', job JSON} | {'none'}
-- Invariant: after this, the worker is not idle and its inbox holds no job.
local wid = ARGV[3]
redis.call('SREM', k('idle'), wid)
local handed = inbox_next(wid)
if handed then return {'ok', handed} end
return {'none'}
