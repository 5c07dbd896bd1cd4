-- card_issue: make login cards (or revoke them), each the only valid card of its account.
-- KEYS: none (built from the prefix; see lib.lua)
-- ARGV: prefix, now, expires (seconds since the epoch), keep (seconds a card's record is kept
--       after it expires, so the dashboard can say "expired"), then one (name, digest, card id)
--       triple per card; an empty digest revokes the account's card without making a new one
-- Returns: {} done, or {name} for the first name that is no account (nothing changed then)
-- Invariant: all or nothing. A user's older card is revoked in the same step as the new one is
--   made, so one card at most logs a user in; a revoked card stays the user's newest (the
--   dashboard says "revoked") until a new one is made. A card is bound to its account's
--   password hash and role as they are now: a reset or a role change (from anywhere) ends it.
--   Run twice (a retry after a lost reply), the same cards result.
local expires, keep = tonumber(ARGV[3]), tonumber(ARGV[4])
local accounts = {}
for i = 5, #ARGV, 3 do
  local account = account_record(ARGV[i])
  if not account then return {ARGV[i]} end
  accounts[ARGV[i]] = account
end

local function revoke(name)
  local digest = redis.call('HGET', k('cards'), name)
  if not digest then return end
  local card = k('card', digest)
  if redis.call('HGET', card, 'state') == '' then redis.call('HSET', card, 'state', 'revoked', 'at', NOW) end
end

local ttl = math.max(1, math.ceil(expires - now + keep))
for i = 5, #ARGV, 3 do
  local name, digest, id = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  revoke(name)
  if digest ~= '' then
    local account = accounts[name]
    local card = k('card', digest)
    redis.call('HSET', card, 'user', name, 'role', account['role'], 'card', id, 'issued', NOW,
      'expires', ARGV[3], 'state', '', 'at', '',
      'bound', redis.sha1hex(account['hash'] .. '\n' .. account['role']))
    redis.call('EXPIRE', card, ttl)
    redis.call('HSET', k('cards'), name, digest)
  end
end
return {}
