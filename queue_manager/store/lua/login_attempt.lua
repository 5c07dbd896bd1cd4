-- login_attempt: may this password check go ahead (and spend argon2 on it)? See
-- core/throttling.py for the policy; login_succeeded.lua takes the charge back.
-- KEYS: none (built from the prefix; see lib.lua)
-- ARGV: prefix, now, name, address bucket, free failures per (account, address), per address,
--       per account, first wait, longest wait, window (seconds)
-- Returns: '0' to go ahead (the attempt is already counted as a failure), or the seconds
--   left to wait (as text; nothing counted)
-- Invariant: checked and counted in one step, so a burst of parallel guesses gets no more
--   than the free allowance through to argon2; refused attempts never lengthen the wait.
local name, addr = ARGV[3], ARGV[4]
local free_pair, free_addr, free_user = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local base, longest, window = tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10])
local pair, by_addr, by_user = k('login', 'pair', name, addr), k('login', 'address', addr),
  k('login', 'account', name)

-- Seconds left before `key`'s count allows another try: none below `free` failures, then
-- `base` doubling with each further failure, at most `cap`, from the last failure.
local function wait(key, free, cap)
  local f = redis.call('HMGET', key, 'n', 't')
  local n = tonumber(f[1] or '0')
  if n < free then return 0 end
  local delay = math.min(base * 2 ^ (n - free), cap)
  return math.max(0, tonumber(f[2]) + delay - now)
end

local function count(key)
  redis.call('HINCRBY', key, 'n', 1)
  redis.call('HSET', key, 't', NOW)
  redis.call('EXPIRE', key, math.ceil(window))
end

local left = math.max(wait(pair, free_pair, longest), wait(by_addr, free_addr, longest),
  wait(by_user, free_user, base))
if left > 0 then return tostring(left) end
count(pair)
count(by_addr)
count(by_user)
return '0'
