-- backup_wipe: remove every key of one workshop before a restore puts its backup back.
-- KEYS: none (the keys are found inside, by pattern: a single Redis, never a Cluster)
-- ARGV: prefix, now (unused), the prefix as a glob pattern (escaped) followed by '*',
--       a key to keep (the record of the newest backup)
-- Returns: how many keys were removed
-- Invariant: only keys under this prefix go; other workshops sharing the Redis keep theirs.
local pattern, keep = ARGV[3], ARGV[4]
local removed = 0
for _, key in ipairs(redis.call('KEYS', pattern)) do
  if key ~= keep then
    removed = removed + redis.call('UNLINK', key)
  end
end
return removed
