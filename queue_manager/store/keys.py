"""Every Redis key name, in one place. `lua/lib.lua` builds the same names inside scripts.

{p}control                 hash: paused, mode, limits, max_attempts, lease_seconds, ...
{p}seq / served_ctr / front_ctr   counters: submission order, round-robin stamps, front moves
{p}job:{id}                hash: the job (see store/jobs.py for the fields)
{p}job:{id}:tl             list: the job's timeline, one JSON entry per transition
{p}q:{lane}:u:{user}       zset: a user's queued jobs in a lane, scored by seq (FIFO)
{p}q:{lane}:users          zset: users with queued jobs in a lane, scored by served stamp
{p}front                   zset: jobs moved to the front, most recent lowest
{p}served                  hash: user -> last served stamp
{p}queued / running        hash: user -> count of queued / running jobs
{p}stats                   hash: status -> count of jobs
{p}leases                  zset: running job -> lease deadline
{p}user:{user}:jobs        zset: all of a user's jobs by seq
{p}user:{user}:ctl         hash: the user's overrides (max_queued, max_running, paused)
{p}user:{user}:stats       hash: completed/failed/cancelled counts, wait_sum, wait_n, last_wait
{p}gallery                 zset: completed jobs with outputs, by finish time (the gallery)
{p}user:{user}:gallery     zset: the same, one user's
{p}showcase                string: the output shown to everyone now (JSON, core.gallery.Showcase)
{p}failures                list: the newest failed jobs (ids, newest first, capped at 50)
{p}req:{sig}:nodes/models  sets: what a requirement signature needs
{p}worker:{id}             hash: state, info, job, next (a job handed early, queued behind
                           `job` on its ComfyUI), seen, joined, done, failed, reports_models
{p}worker:{id}:nodes/models/fit   sets of capabilities; hash sig -> '1'/'0' fit cache
{p}worker:{id}:inbox       list: a job handed to the idle worker (JSON), or 'wake'
{p}worker:{id}:signals     list: 'stop:<job>' / 'back:<job>' for the agent (`Signal`)
{p}worker:{id}:object_info string: the worker's ComfyUI object_info (JSON)
{p}catalog_version         counter: bumped at each object_info upload (caches compare it)
{p}idle                    set: workers waiting in a blocking claim
{p}early                   set: workers holding a job handed early (their `next`)
{p}workers                 zset: worker -> last seen
{p}worker_tokens           hash: worker -> SHA-256 of its token's secret
{p}accounts                hash: name -> JSON {role, hash (argon2), sessions {id: expiry}}
{p}login:pair:{user}:{addr}   hash n, t: wrong passwords for an account from an address
{p}login:address:{addr}       hash n, t: wrong passwords from an address, all accounts
{p}login:account:{user}       hash n, t: wrong passwords for an account, all addresses
{p}card:{sha256 of token}   hash (expires): a login card: user, role, card id, issued, expires,
                           state ('' / used / revoked), at, bound (sha1 of password hash+role)
{p}cards                   hash: user -> digest of the user's newest card
{p}lost_outputs            list: files a job attempt stored before it lost the job (JSON
                           user, type, subfolder, filename), for the queue manager to delete
{p}endpoints               hash: push endpoint name -> its configuration (JSON)
{p}endpoint:{name}:status  hash: phase, reason, since, running, cold_starts (JSON list)
{p}endpoint:{name}:owner   string (expires): the queue-manager process dispatching to it
{p}rt:gpu:{gpu}[:{family}] / rt:family:{family} / rt:all   lists: the latest run times of
                           finished jobs ("<seconds> <steps>", newest first, capped; store/runtimes)
{p}rt:last                  hash: user -> "<when their last job ended> <its shape>"
{p}rt:think                list: seconds from a user's result to their next Run (newest first)
{p}setting_defaults        hash: ComfyUI setting id -> JSON value, for every participant who has
                           not set it (core/setting_defaults.py); :seeded once the built-in ones
                           were written (an unset one stays unset)
{p}events                  stream: every job, worker and control event (capped)
"""

from __future__ import annotations

from dataclasses import dataclass

from queue_manager.core.ids import JobId, UserId, WorkerId
from queue_manager.core.jobs import Lane


@dataclass(frozen=True)
class Keys:
    prefix: str

    def _k(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    @property
    def control(self) -> str:
        return self._k("control")

    @property
    def events(self) -> str:
        return self._k("events")

    @property
    def stats(self) -> str:
        return self._k("stats")

    @property
    def queued(self) -> str:
        return self._k("queued")

    @property
    def running(self) -> str:
        return self._k("running")

    @property
    def leases(self) -> str:
        return self._k("leases")

    @property
    def workers(self) -> str:
        return self._k("workers")

    @property
    def accounts(self) -> str:
        return self._k("accounts")

    @property
    def worker_tokens(self) -> str:
        return self._k("worker_tokens")

    @property
    def lost_outputs(self) -> str:
        return self._k("lost_outputs")

    @property
    def setting_defaults(self) -> str:
        return self._k("setting_defaults")

    def job(self, job_id: JobId) -> str:
        return self._k("job", job_id)

    def timeline(self, job_id: JobId) -> str:
        return self._k("job", job_id, "tl")

    def job_files(self, job_id: JobId) -> str:
        return self._k("job", job_id, "files")

    def user_jobs(self, user: UserId) -> str:
        return self._k("user", user, "jobs")

    def user_ctl(self, user: UserId) -> str:
        return self._k("user", user, "ctl")

    def lane_users(self, lane: Lane) -> str:
        return self._k("q", lane.value, "users")

    def worker(self, worker_id: WorkerId) -> str:
        return self._k("worker", worker_id)

    def worker_nodes(self, worker_id: WorkerId) -> str:
        return self._k("worker", worker_id, "nodes")

    def worker_models(self, worker_id: WorkerId) -> str:
        return self._k("worker", worker_id, "models")

    def inbox(self, worker_id: WorkerId) -> str:
        return self._k("worker", worker_id, "inbox")

    def signals(self, worker_id: WorkerId) -> str:
        return self._k("worker", worker_id, "signals")

    def worker_object_info(self, worker_id: WorkerId) -> str:
        return self._k("worker", worker_id, "object_info")

    @property
    def catalog_version(self) -> str:
        return self._k("catalog_version")

    @property
    def endpoints(self) -> str:
        return self._k("endpoints")

    def endpoint_status(self, name: str) -> str:
        return self._k("endpoint", name, "status")

    def endpoint_owner(self, name: str) -> str:
        return self._k("endpoint", name, "owner")

    @property
    def catalog_kept(self) -> str:
        return self._k("catalog_kept")

    def user_stats(self, user: UserId) -> str:
        return self._k("user", user, "stats")

    @property
    def failures(self) -> str:
        return self._k("failures")

    def card(self, digest: str) -> str:
        return self._k("card", digest)

    @property
    def cards(self) -> str:
        return self._k("cards")

    @property
    def gallery(self) -> str:
        return self._k("gallery")

    def user_gallery(self, user: UserId) -> str:
        return self._k("user", user, "gallery")

    SHOWCASE = "showcase"  # a name under the prefix (kept by announce.lua)

    def run_times(self, *parts: str) -> str:
        return self._k("rt", *parts)

    @property
    def served(self) -> str:
        return self._k("served")
