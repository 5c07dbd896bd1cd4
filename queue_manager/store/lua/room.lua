-- room: everything the instructor's dashboard shows, in one consistent read (read-only).
-- KEYS: none (built from the prefix; see lib.lua)
-- ARGV: prefix, now, how many recent failures
-- Returns: {snapshot (as snapshot.lua), control (flat hash),
--           queued: {{job, user, lane, created_at, hold}, ...} in snapshot order,
--           running: {{job, user, lane, worker, attempts, claimed_at, started_at, node,
--                      progress, phase, preview length}, ...},
--           failures: {{job, user, worker, finished_at, error}, ...} newest first,
--           queued per user (flat hash), running per user (flat hash),
--           people: {{name, role, stats (flat hash), controls (flat hash)}, ...} by name,
--           workers: {flat worker hash, ...} by id}
-- Invariant: never a prompt, a workflow or a password hash: only what the dashboard shows.
local snapshot = queue_snapshot()
local queued = {}
for _, lane in ipairs(snapshot[4]) do
  for _, u in ipairs(lane[2]) do
    local jobs = u[3]
    for i = 1, #jobs, 2 do
      local row = redis.call('HMGET', k('job', jobs[i]), 'user', 'lane', 'created_at', 'hold')
      table.insert(row, 1, jobs[i])
      queued[#queued + 1] = row
    end
  end
end
local running = {}
for _, jid in ipairs(redis.call('ZRANGE', k('leases'), 0, -1)) do
  local row = redis.call('HMGET', k('job', jid), 'user', 'lane', 'worker', 'attempts',
    'claimed_at', 'started_at', 'node', 'progress', 'phase')
  table.insert(row, 1, jid)
  row[#row + 1] = redis.call('HSTRLEN', k('job', jid), 'preview')
  running[#running + 1] = row
end
local failures = {}
for _, jid in ipairs(redis.call('LRANGE', k('failures'), 0, tonumber(ARGV[3]) - 1)) do
  local row = redis.call('HMGET', k('job', jid), 'user', 'worker', 'finished_at', 'error')
  if row[1] then  -- else expired from Redis
    table.insert(row, 1, jid)
    failures[#failures + 1] = row
  end
end
local people = {}
local accounts = redis.call('HGETALL', k('accounts'))
for i = 1, #accounts, 2 do
  local name = accounts[i]
  people[#people + 1] = {name, cjson.decode(accounts[i + 1])['role'],
    redis.call('HGETALL', k('user', name, 'stats')), redis.call('HGETALL', k('user', name, 'ctl'))}
end
table.sort(people, function(a, b) return a[1] < b[1] end)
local workers = {}
for _, wid in ipairs(redis.call('ZRANGE', k('workers'), 0, -1)) do
  local w = redis.call('HGETALL', k('worker', wid))
  if #w > 0 then workers[#workers + 1] = w end
end
return {snapshot, redis.call('HGETALL', k('control')), queued, running, failures,
  redis.call('HGETALL', k('queued')), redis.call('HGETALL', k('running')), people, workers}
