"""Bounded fuzzing of the public API: a stack per test module, and at the end of the run the
number of cases each target ran."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from _pytest.terminal import TerminalReporter
from hypothesis.configuration import set_hypothesis_home_dir

from queue_manager.cli.redis_server import RedisServer
from queue_manager.store.accounts import Role
from tests.reliability.fuzz.stack import Stack, running_stack
from tests.reliability.fuzz.tally import summary

# Hypothesis keeps caches (and would keep its example database, which every fuzzer here turns
# off) in ./.hypothesis: outside the repository instead.
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "comfy-workshop-hypothesis")

# user001 is fuzzed; user002 is the neighbour whose folder and queue must stay untouched.
ACCOUNTS = {"user001": Role.PARTICIPANT, "user002": Role.PARTICIPANT, "teacher": Role.INSTRUCTOR}


@pytest.fixture(scope="module")
def stack(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(redis_server, tmp_path_factory.mktemp("fuzz"), ACCOUNTS) as running:
        yield running


def pytest_terminal_summary(terminalreporter: TerminalReporter) -> None:
    if lines := summary():
        terminalreporter.section("fuzz cases (target, cases, answers: status x count)")
        for line in lines:
            terminalreporter.write_line(line)
