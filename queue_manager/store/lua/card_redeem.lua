-- card_redeem: follow a login link: use its card, once.
-- KEYS: none (built from the prefix; see lib.lua)
-- ARGV: prefix, now, digest (SHA-256 of the link's token)
-- Returns: {'opened', name, role, password hash} (the session is then opened for exactly that
--   hash: session_open.lua), or {'unknown'}, {'used'|'revoked'|'expired'|'stale', name}
-- Invariant: checked and used in one step, so two requests with the same link (a double tap,
--   two devices) never both get through. A card whose account is gone or whose password or
--   role changed since it was made ('stale') logs nobody in. A refusal changes nothing. Run
--   twice (a retry after a lost reply), the second run says 'used': it fails closed.
local key = k('card', ARGV[3])
local card = hash(key)
local name = card['user']
if not name then return {'unknown'} end
if card['state'] ~= '' then return {card['state'], name} end
if tonumber(card['expires']) <= now then return {'expired', name} end
local account = account_record(name)
if not account or redis.sha1hex(account['hash'] .. '\n' .. account['role']) ~= card['bound'] then
  return {'stale', name}
end
redis.call('HSET', key, 'state', 'used', 'at', NOW)
return {'opened', name, account['role'], account['hash']}
