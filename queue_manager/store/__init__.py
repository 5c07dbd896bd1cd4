"""The only package that talks to Redis: jobs, workers, room controls, accounts, tokens, the
node catalogue and the event stream; every multi-key change is one Lua script in `lua/`."""

from queue_manager.store.control import ControlStore
from queue_manager.store.events import EventLog
from queue_manager.store.jobs import JobStore
from queue_manager.store.scripts import ScriptRunner
from queue_manager.store.workers import WorkerStore

__all__ = ["ControlStore", "EventLog", "JobStore", "ScriptRunner", "WorkerStore"]
