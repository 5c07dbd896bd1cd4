-- lib.lua: helpers shared by every operation script; the loader puts this file in front of each.
--
-- Every script takes ARGV[1] = key prefix and ARGV[2] = now (seconds since the epoch, as text;
-- the caller's clock, so tests can move time). Key names mirror queue_manager/keys.py.
-- Keys are built here rather than passed in KEYS because a claim decides at run time which
-- user queues it reads: these scripts need a single Redis (or Sentinel), never a Cluster.
local P = ARGV[1]
local NOW = ARGV[2]
local now = tonumber(NOW)
local LANES = {'instructor', 'high', 'normal', 'low'}
-- Users never served carry (first seq - NEVER_SERVED): below every real served stamp (>= 1),
-- ordered among themselves by arrival.
local NEVER_SERVED = 1e15

local function k(...)
  return P .. table.concat({...}, ':')
end

local function hash(key)
  local flat, t = redis.call('HGETALL', key), {}
  for i = 1, #flat, 2 do t[flat[i]] = flat[i + 1] end
  return t
end

-- The control hash and per-user overrides, each read once per script run.
local CONTROL = nil
local function control(field)
  if CONTROL == nil then CONTROL = hash(k('control')) end
  return CONTROL[field]
end

local USER_CTL = {}
local function user_setting(user, field)
  local ctl = USER_CTL[user]
  if ctl == nil then
    ctl = hash(k('user', user, 'ctl'))
    USER_CTL[user] = ctl
  end
  local v = ctl[field]
  if v == nil then v = control(field) end
  return v
end

local function limit(user, field)
  local v = tonumber(user_setting(user, field))
  if v == nil or v < 0 then return math.huge end
  return v
end

-- Append one event to the stream; `json` is its data, already encoded (an object).
local function emit_json(kind, jid, user, worker, json)
  local maxlen = control('events_maxlen') or '100000'
  return redis.call('XADD', k('events'), 'MAXLEN', '~', maxlen, '*',
    't', kind, 'j', jid or '', 'u', user or '', 'w', worker or '',
    'd', json, 'at', NOW)
end

local function emit(kind, jid, user, worker, data)
  return emit_json(kind, jid, user, worker, cjson.encode(data or {}))
end

-- The outputs recorded for one attempt of a job (record_output.lua), as a JSON list in upload
-- order: the `<attempt>:<name>` fields of `job:<id>:files`.
local function attempt_outputs(jid, attempt)
  local flat, found = redis.call('HGETALL', k('job', jid, 'files')), {}
  local prefix = attempt .. ':'
  for i = 1, #flat, 2 do
    if string.sub(flat[i], 1, #prefix) == prefix then found[#found + 1] = cjson.decode(flat[i + 1]) end
  end
  table.sort(found, function(a, b) return a['n'] < b['n'] end)
  if #found == 0 then return '[]' end
  for _, d in ipairs(found) do d['n'], d['attempt'] = nil, nil end
  return cjson.encode(found)
end

-- Change a job's status and keep every derived count (per-user queued/running, per-status
-- totals, leases) and the job's timeline in step with it.
local function transition(jid, user, from, to, reason, worker, attempt)
  redis.call('HSET', k('job', jid), 'status', to)
  if from then redis.call('HINCRBY', k('stats'), from, -1) end
  redis.call('HINCRBY', k('stats'), to, 1)
  if from == 'queued' then redis.call('HINCRBY', k('queued'), user, -1) end
  if to == 'queued' then redis.call('HINCRBY', k('queued'), user, 1) end
  if from == 'running' then
    redis.call('HINCRBY', k('running'), user, -1)
    redis.call('ZREM', k('leases'), jid)
  end
  if to == 'running' then redis.call('HINCRBY', k('running'), user, 1) end
  if to == 'completed' or to == 'failed' or to == 'cancelled' then
    redis.call('HINCRBY', k('user', user, 'stats'), to, 1)
  end
  if to == 'failed' then
    redis.call('LPUSH', k('failures'), jid)
    redis.call('LTRIM', k('failures'), 0, 49)
  end
  local entry = {at = NOW, to = to, reason = reason}
  if from then entry['from'] = from end
  if worker and worker ~= '' then entry['worker'] = worker end
  if attempt then entry['attempt'] = tonumber(attempt) end
  redis.call('RPUSH', k('job', jid, 'tl'), cjson.encode(entry))
end

-- Put a queued job into its lane: its user's FIFO (by seq) and the lane's round-robin of users.
local function lane_add(lane, user, jid, seq)
  redis.call('ZADD', k('q', lane, 'u', user), seq, jid)
  if not redis.call('ZSCORE', k('q', lane, 'users'), user) then
    local served = redis.call('HGET', k('served'), user)
    local score = served and tonumber(served) or (tonumber(seq) - NEVER_SERVED)
    redis.call('ZADD', k('q', lane, 'users'), score, user)
  end
end

local function lane_remove(lane, user, jid)
  redis.call('ZREM', k('q', lane, 'u', user), jid)
  if redis.call('EXISTS', k('q', lane, 'u', user)) == 0 then
    redis.call('ZREM', k('q', lane, 'users'), user)
  end
  redis.call('ZREM', k('front'), jid)
end

-- A user whose jobs cannot be claimed now: paused, or running as many jobs as allowed.
local BLOCKED = {}
local function blocked(user)
  local b = BLOCKED[user]
  if b == nil then
    b = user_setting(user, 'paused') == '1'
      or tonumber(redis.call('HGET', k('running'), user) or '0') >= limit(user, 'max_running')
    BLOCKED[user] = b
  end
  return b
end

-- Whether a worker has what a requirement signature needs (node types; models too when the
-- worker reports them). Cached per worker; the cache is dropped when the worker registers again.
local function fits(wid, sig)
  local cached = redis.call('HGET', k('worker', wid, 'fit'), sig)
  if cached then return cached == '1' end
  local ok = #redis.call('SDIFF', k('req', sig, 'nodes'), k('worker', wid, 'nodes')) == 0
  if ok and redis.call('HGET', k('worker', wid), 'reports_models') == '1' then
    ok = #redis.call('SDIFF', k('req', sig, 'models'), k('worker', wid, 'models')) == 0
  end
  redis.call('HSET', k('worker', wid, 'fit'), sig, ok and '1' or '0')
  return ok
end

-- A worker holds at most two jobs: `job`, the one its GPU runs (or will run first), and `next`,
-- one handed early that waits in its ComfyUI's own queue behind it (so the GPU never idles
-- between jobs). A job already running there makes a new hand-over the `next` one.
local function worker_hold(wid, jid)
  local wkey = k('worker', wid)
  local cur = redis.call('HGET', wkey, 'job')
  if cur and cur ~= '' and cur ~= jid then
    local f = redis.call('HMGET', k('job', cur), 'status', 'worker')
    if f[1] == 'running' and f[2] == wid then
      redis.call('HSET', wkey, 'next', jid)
      redis.call('SADD', k('early'), wid)
      return
    end
  end
  redis.call('HSET', wkey, 'job', jid, 'next', '')
end

-- A job leaves its worker (finished, requeued, cancelled, taken back): its `next` moves up.
local function worker_drop(wid, jid)
  if not wid or wid == '' then return end
  local wkey = k('worker', wid)
  local f = redis.call('HMGET', wkey, 'job', 'next')
  if f[1] == jid then
    redis.call('HSET', wkey, 'job', f[2] or '', 'next', '')
    redis.call('SREM', k('early'), wid)
  elseif f[2] == jid then
    redis.call('HSET', wkey, 'next', '')
    redis.call('SREM', k('early'), wid)
  end
end

-- Tell a worker agent at once about one job it holds ('stop:<job>' cancelled, 'back:<job>'
-- wanted back); it reads them with a long poll (`signals`). Old signals are dropped.
local function signal(wid, what, jid)
  local key = k('worker', wid, 'signals')
  redis.call('RPUSH', key, what .. ':' .. jid)
  redis.call('LTRIM', key, -100, -1)
  redis.call('EXPIRE', key, 3600)
end

-- Hand a queued job to a worker: out of every queue structure, running, leased, the user
-- stamped as just served. Returns what the worker needs, as JSON.
local function take(jid, wid)
  local f = redis.call('HMGET', k('job', jid), 'user', 'lane')
  local user, lane = f[1], f[2]
  lane_remove(lane, user, jid)
  local prev_served = redis.call('HGET', k('served'), user)
  local stamp = redis.call('INCR', k('served_ctr'))
  redis.call('HSET', k('served'), user, stamp)
  for _, l in ipairs(LANES) do
    redis.call('ZADD', k('q', l, 'users'), 'XX', stamp, user)
  end
  BLOCKED[user] = nil
  local attempt = redis.call('HINCRBY', k('job', jid), 'attempts', 1)
  transition(jid, user, 'queued', 'running', 'claimed', wid, attempt)
  -- a new attempt starts clean: nothing of an earlier attempt's run shows as this one's
  -- (prev_served / served: what give_back.lua restores if it is taken back before it starts)
  redis.call('HSET', k('job', jid), 'worker', wid, 'claimed_at', NOW, 'hold', '', 'started_at', '',
    'node', '', 'phase', '', 'prev_served', prev_served or '', 'served', stamp, 'takeback', '')
  redis.call('ZADD', k('leases'), now + tonumber(control('lease_seconds') or '30'), jid)
  worker_hold(wid, jid)
  local j = redis.call('HMGET', k('job', jid), 'client_id', 'prompt', 'extra_data', 'created_at')
  local wait = now - tonumber(j[4])
  emit('job.claimed', jid, user, wid, {attempt = attempt, wait = wait})
  if attempt == 1 then  -- the wait a participant felt: queued until first handed to a GPU
    redis.call('HINCRBYFLOAT', k('user', user, 'stats'), 'wait_sum', wait)
    redis.call('HINCRBY', k('user', user, 'stats'), 'wait_n', 1)
    redis.call('HSET', k('user', user, 'stats'), 'last_wait', wait)
  end
  return cjson.encode({id = jid, user = user, lane = lane, worker = wid, attempts = attempt,
    client_id = j[1] or '', prompt = j[2], extra_data = j[3] or '{}',
    created_at = j[4], claimed_at = NOW})
end

-- Where the claim order puts a job: {0} in the front list, else {lane's place (1..), then its
-- user's turn in that lane: their served stamp (fair mode; `served` as it stood before an early
-- hand-over) or the job's seq (fifo mode)}. Smaller goes first.
local function rank(jid, lane, user, served, seq)
  if redis.call('ZSCORE', k('front'), jid) then return {0, 0} end
  local place = #LANES + 1
  for i, l in ipairs(LANES) do
    if l == lane then place = i end
  end
  if control('mode') == 'fifo' then return {place, tonumber(seq)} end
  local turn = tonumber(served or '')
  if turn == nil then turn = tonumber(seq) - NEVER_SERVED end
  return {place, turn}
end

local function before(a, b)
  return a[1] < b[1] or (a[1] == b[1] and a[2] < b[2])
end

-- A queued job `jid` that the policy puts before a job already handed early to a busy worker
-- (its `next`, not started yet, waiting in that ComfyUI's queue) takes that hand-over back:
-- the worker is told to return it (give_back.lua), and claims again, getting `jid` first. So an
-- instructor's job, a job moved up, or a participant whose turn comes first (a newcomer) is not
-- held back by an early hand-over. Only when no idle worker can run `jid`; one take-back per
-- early hand-over.
local function take_back_for(jid)
  local early = redis.call('SMEMBERS', k('early'))
  if #early == 0 then return nil end  -- the usual case: nothing handed early anywhere
  local f = redis.call('HMGET', k('job', jid), 'status', 'user', 'lane', 'req', 'seq')
  if f[1] ~= 'queued' or control('paused') == '1' or blocked(f[2]) then return nil end
  for _, wid in ipairs(redis.call('SMEMBERS', k('idle'))) do
    if redis.call('HGET', k('worker', wid), 'state') == 'online' and fits(wid, f[4]) then
      return nil
    end
  end
  local mine = rank(jid, f[3], f[2], redis.call('HGET', k('served'), f[2]), f[5])
  table.sort(early)
  for _, wid in ipairs(early) do
    local w = redis.call('HMGET', k('worker', wid), 'state', 'next')
    if w[1] == 'online' and w[2] and w[2] ~= '' and fits(wid, f[4]) then
      local n = redis.call('HMGET', k('job', w[2]), 'status', 'worker', 'started_at', 'takeback',
        'lane', 'user', 'prev_served', 'seq')
      if n[1] == 'running' and n[2] == wid and (n[3] or '') == '' and (n[4] or '') == ''
          and before(mine, rank(w[2], n[5], n[6], n[7], n[8])) then
        redis.call('HSET', k('job', w[2]), 'takeback', jid)
        signal(wid, 'back', w[2])
        return wid
      end
    end
  end
  return nil
end

-- A worker with nothing at all to run (no job held) that finds nothing to claim takes over a
-- job handed early to a busy worker: there it would wait behind a running job while this GPU
-- idles, and start after jobs claimed later on other GPUs.
local function take_back_for_idle(wid)
  local cur = redis.call('HGET', k('worker', wid), 'job')
  if cur and cur ~= '' then return nil end
  local early = redis.call('SMEMBERS', k('early'))
  table.sort(early)
  for _, other in ipairs(early) do
    local jid = other ~= wid and redis.call('HGET', k('worker', other), 'next') or ''
    if jid and jid ~= '' then
      local n = redis.call('HMGET', k('job', jid), 'status', 'worker', 'started_at', 'takeback',
        'req')
      if n[1] == 'running' and n[2] == other and (n[3] or '') == '' and (n[4] or '') == ''
          and fits(wid, n[5]) then
        redis.call('HSET', k('job', jid), 'takeback', 'idle ' .. wid)
        signal(other, 'back', jid)
        return other
      end
    end
  end
  return nil
end

-- Idle workers wait (BLPOP) on their inbox. A submission that one of them can run is handed
-- to it there directly; anything else that may make a job claimable (a finished job freeing a
-- running slot, a requeue, a resume, a changed limit) drops a 'wake' so it claims again.
local function wake_idle()
  for _, wid in ipairs(redis.call('SMEMBERS', k('idle'))) do
    if redis.call('LLEN', k('worker', wid, 'inbox')) == 0 then
      redis.call('RPUSH', k('worker', wid, 'inbox'), 'wake')
    end
  end
  redis.call('DEL', k('idle'))
end

-- The job handed to a worker's inbox, if it is still that worker's (not cancelled or
-- requeued since), and whether a 'stop' (the worker ends its wait) was read on the way;
-- 'wake' and 'stop' tokens and stale hand-overs are dropped.
local function inbox_next(wid)
  local inbox = k('worker', wid, 'inbox')
  local stopped = false
  while true do
    local item = redis.call('LPOP', inbox)
    if not item then return nil, stopped end
    if item == 'stop' then
      stopped = true
    elseif item ~= 'wake' then
      local j = cjson.decode(item)
      local f = redis.call('HMGET', k('job', j.id), 'status', 'worker', 'attempts')
      if f[1] == 'running' and f[2] == wid and tonumber(f[3]) == j.attempts then
        return item, stopped
      end
    end
  end
end

-- The files an attempt stored before its job went back to the queue (record_output.lua) are not
-- the job's: off the job, onto `lost_outputs` for the queue manager to delete (where it sent
-- the job back, and at its reaper's tick), so the re-run leaves one copy of each output in the
-- user's folder, not a stray one beside it. A job that fails for good keeps its last
-- attempt's files (the page was shown them), as a failure the worker reports does.
local function drop_attempt_files(jid, user, attempt)
  local files = k('job', jid, 'files')
  local flat, prefix = redis.call('HGETALL', files), attempt .. ':'
  for i = 1, #flat, 2 do
    if string.sub(flat[i], 1, #prefix) == prefix then
      local d = cjson.decode(flat[i + 1])
      redis.call('RPUSH', k('lost_outputs'), cjson.encode({user = user, type = d['type'],
        subfolder = d['subfolder'], filename = d['filename']}))
      redis.call('HDEL', files, flat[i])
    end
  end
end

-- Send a running job back to the queue (attempts left) or fail it for good (poison job).
-- Returns the new status.
local function expire(jid, reason)
  local f = redis.call('HMGET', k('job', jid), 'status', 'user', 'lane', 'seq', 'attempts', 'worker')
  if f[1] ~= 'running' then return f[1] end
  local user, lane, seq, attempts, worker = f[2], f[3], f[4], tonumber(f[5]), f[6]
  local max_attempts = tonumber(control('max_attempts') or '3')
  worker_drop(worker, jid)
  if attempts >= max_attempts then
    local err = {type = 'attempts_exhausted',
      message = 'gave up after ' .. attempts .. ' attempts: ' .. reason}
    transition(jid, user, 'running', 'failed', reason .. '; attempt limit reached', worker, attempts)
    redis.call('HSET', k('job', jid), 'error', cjson.encode(err), 'finished_at', NOW)
    emit('job.failed', jid, user, worker, {error = err, attempt = attempts})
    return 'failed'
  end
  drop_attempt_files(jid, user, attempts)  -- a re-run will store its own
  transition(jid, user, 'running', 'queued', reason, worker, attempts)
  redis.call('HSET', k('job', jid), 'worker', '', 'progress', '')
  lane_add(lane, user, jid, seq)
  emit('job.requeued', jid, user, worker, {reason = reason, attempt = attempts})
  wake_idle()
  return 'queued'
end

-- A job handed to worker `wid` early that never started (it waited in that ComfyUI's own
-- queue) goes back exactly where it was: its seq in its user's FIFO, its attempt not counted
-- (the hand-over ran nothing), its user's round-robin turn as before the hand-over, so
-- returning it changes no one's turn. Taken back for an idle GPU (take_back_for_idle), it is
-- handed to that GPU in the same step: else the busy worker, claiming again at once, could take
-- it straight back (and the idle GPU take it back again). Returns 'ok', 'started' (too late:
-- it runs there), or the job's status when that attempt is not the worker's any more.
local function return_unstarted(jid, wid, attempt, reason)
  local f = redis.call('HMGET', k('job', jid), 'status', 'worker', 'attempts', 'user', 'lane',
    'seq', 'started_at', 'prev_served', 'served', 'takeback', 'req')
  if f[1] ~= 'running' or f[2] ~= wid or f[3] ~= tostring(attempt) then
    return f[1] or 'missing'
  end
  if (f[7] or '') ~= '' then
    redis.call('HSET', k('job', jid), 'takeback', '')
    return 'started'
  end
  local user, lane, seq, prev = f[4], f[5], f[6], f[8] or ''
  worker_drop(wid, jid)
  transition(jid, user, 'running', 'queued', reason, wid, attempt)
  redis.call('HINCRBY', k('job', jid), 'attempts', -1)
  redis.call('HSET', k('job', jid), 'worker', '', 'progress', '', 'phase', '', 'claimed_at', '',
    'takeback', '')
  -- the user's turn as it was before the hand-over (unless they were served again since),
  -- then the job back in its place
  local restore = redis.call('HGET', k('served'), user) == f[9]
  if restore and prev ~= '' then redis.call('HSET', k('served'), user, prev) end
  if restore and prev == '' then redis.call('HDEL', k('served'), user) end
  for _, l in ipairs(restore and LANES or {}) do
    local score = prev
    if score == '' then
      local first = redis.call('ZRANGE', k('q', l, 'u', user), 0, 0, 'WITHSCORES')
      score = tostring(tonumber(first[2] or seq) - NEVER_SERVED)
    end
    redis.call('ZADD', k('q', l, 'users'), 'XX', score, user)
  end
  lane_add(lane, user, jid, seq)
  emit('job.requeued', jid, user, wid, {reason = reason, attempt = tonumber(attempt),
    counted = false})
  local idle = string.match(f[10] or '', '^idle (.+)$')
  if idle and redis.call('SISMEMBER', k('idle'), idle) == 1 and control('paused') ~= '1'
      and not blocked(user) and redis.call('HGET', k('worker', idle), 'state') == 'online'
      and fits(idle, f[11]) then
    redis.call('SREM', k('idle'), idle)
    redis.call('RPUSH', k('worker', idle, 'inbox'), take(jid, idle))
  end
  wake_idle()
  return 'ok'
end

-- The whole queue as the claim script sees it: {mode, {front job, user, ...}, {paused users},
-- {lane name, {user, served score, {job, seq, ...}}, ...} per lane} (snapshot.lua, room.lua).
local function queue_snapshot()
  local front = {}
  for _, jid in ipairs(redis.call('ZRANGE', k('front'), 0, -1)) do
    front[#front + 1] = jid
    front[#front + 1] = redis.call('HGET', k('job', jid), 'user')
  end
  local paused, seen = {}, {}
  local lanes = {}
  for _, lane in ipairs(LANES) do
    local users = {}
    local us = redis.call('ZRANGE', k('q', lane, 'users'), 0, -1, 'WITHSCORES')
    for i = 1, #us, 2 do
      local user = us[i]
      users[#users + 1] = {user, us[i + 1],
        redis.call('ZRANGE', k('q', lane, 'u', user), 0, -1, 'WITHSCORES')}
      if not seen[user] then
        seen[user] = true
        -- the user's own pause only: the room's pause holds everyone and moves no one, so
        -- positions stay meaningful while it lasts (the dashboard reorders a paused queue)
        if redis.call('HGET', k('user', user, 'ctl'), 'paused') == '1' then
          paused[#paused + 1] = user
        end
      end
    end
    lanes[#lanes + 1] = {lane, users}
  end
  return {control('mode') or 'fair', front, paused, lanes}
end

-- An account's record (the accounts hash: name -> JSON {role, hash, sessions}), or nil.
local function account_record(name)
  local raw = redis.call('HGET', k('accounts'), name)
  if not raw then return nil end
  return cjson.decode(raw)
end

-- An account's sessions still in date (session id -> expiry), and how many there are.
local function live_sessions(account)
  local live, n = {}, 0
  if type(account['sessions']) == 'table' then
    for sid, expires in pairs(account['sessions']) do
      if tonumber(expires) > now then live[sid], n = expires, n + 1 end
    end
  end
  return live, n
end

-- Write an account's record back with these sessions (an empty table stays a JSON object).
local function save_account(name, account, sessions)
  account['sessions'] = sessions
  redis.call('HSET', k('accounts'), name, cjson.encode(account))
end

-- Tell every process that this account's sessions ended or its credentials changed: its open
-- sockets check again who they are, and close if that no longer holds.
local function signed_out(name, reason)
  emit('account.signed_out', nil, name, nil, {reason = reason})
end
