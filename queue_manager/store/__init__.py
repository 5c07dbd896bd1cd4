"""The only package that talks to Redis: jobs, workers, room controls and the event stream."""

from queue_manager.store.control import ControlStore, RoomControl
from queue_manager.store.events import Event, EventLog
from queue_manager.store.jobs import Claimed, ClaimResult, JobStore, NewJob, Submitted
from queue_manager.store.scripts import Clock, ScriptRunner
from queue_manager.store.workers import WorkerInfo, WorkerStore

__all__ = [
    "ClaimResult",
    "Claimed",
    "Clock",
    "ControlStore",
    "Event",
    "EventLog",
    "JobStore",
    "NewJob",
    "RoomControl",
    "ScriptRunner",
    "Submitted",
    "WorkerInfo",
    "WorkerStore",
]
