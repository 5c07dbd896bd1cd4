-- snapshot: read the whole queue as the claim script sees it (read-only), for positions.
-- KEYS: none (built from the prefix; see lib.lua)
-- ARGV: prefix, now
-- Returns: {mode, {front job, user, ...}, {paused users...},
--           {lane name, {user, served score, {job, seq, job, seq, ...}}, ...} per lane}
-- Invariant: one consistent view: nothing is claimed or submitted half-way through it.
return queue_snapshot()
