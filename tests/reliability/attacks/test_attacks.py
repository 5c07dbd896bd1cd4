"""The attack table (`attacks.toml`) against one running stack (`stack.py`): every attempt is a
test of its own, sent over real HTTP (or a real WebSocket handshake), and must get the answer
the table says is right, never a 5xx, without revealing anything it must not, without being
handed a session, and, when it could change something, changing nothing of user002's (or
anything outside user001's own folders). The module ends by checking user002 once more."""

from __future__ import annotations

import functools
import gzip
import tomllib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import Any
from urllib.parse import quote

import pytest
import websockets
from websockets.sync.client import connect

from queue_manager.api.auth import SESSION_COOKIE
from queue_manager.api.participant.files import MAX_FILES
from queue_manager.api.worker import MAX_REPORT_BYTES
from queue_manager.cli.redis_server import RedisServer
from queue_manager.service.dispatch import MAX_OBJECT_INFO_BYTES, MAX_PREVIEW_BYTES
from tests.reliability.attacks.stack import (
    TIMEOUT,
    Answer,
    Stack,
    files_outside_user001,
    multipart,
    prepare,
    running_stack,
    user002_state,
)

TABLE = Path(__file__).with_name("attacks.toml")
FIELDS = {"id", "tries", "who", "method", "path", "headers", "body", "body_gen", "multipart",
          "expect", "must_not_reveal", "same_as"}  # fmt: skip
REQUIRED = {"id", "tries", "who", "method", "path", "expect"}
READ_ONLY = {"GET", "HEAD"}
ACTION_BYTES = 1 << 20  # api/participant/queue._ACTION_BYTES


@dataclass(frozen=True)
class Attack:
    id: str
    tries: str
    who: str
    method: str
    path: str
    expect: tuple[int, ...]
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None
    body_gen: str | None = None
    multipart: tuple[dict[str, str], ...] = ()
    must_not_reveal: tuple[str, ...] = ()
    same_as: str | None = None

    @property
    def changes_state(self) -> bool:
        return self.method not in READ_ONLY


def load_table(path: Path = TABLE) -> list[Attack]:
    rows: list[dict[str, Any]] = tomllib.loads(path.read_text())["attack"]
    attacks = []
    for row in rows:
        unknown, missing = set(row) - FIELDS, REQUIRED - set(row)
        assert not unknown and not missing, (row.get("id"), unknown, missing)
        attacks.append(
            Attack(
                **{
                    k: v
                    for k, v in row.items()
                    if k not in ("expect", "multipart", "must_not_reveal")
                },
                expect=tuple(row["expect"]),
                multipart=tuple(row.get("multipart", ())),
                must_not_reveal=tuple(row.get("must_not_reveal", ())),
            )
        )
    return attacks


ATTACKS = load_table()
BY_ID = {a.id: a for a in ATTACKS}


# -- bodies too large or too odd to write in the table ---------------------------------------------

Body = tuple[dict[str, str], bytes]


def _limit(stack: Stack, name: str) -> int:
    value: int = getattr(stack.service.settings, name)
    return value


def _over_prompt_limit(stack: Stack) -> Body:
    pad = b"x" * stack.service.prompt_request_limit
    return {}, b'{"prompt": {}, "pad": "' + pad + b'"}'


def _over_upload_limit(stack: Stack) -> Body:
    size = _limit(stack, "max_upload_bytes") + 1
    return multipart([("image", "big.png", b"x" * size)])


def _many_file_parts(stack: Stack) -> Body:
    return multipart([("image", f"x{n}.png", b"x") for n in range(MAX_FILES + 2)])


def _over_userdata_limit_json(stack: Stack) -> Body:
    pad = b"x" * _limit(stack, "max_userdata_bytes")
    return {}, b'{"pad": "' + pad + b'"}'


def _over_report_limit(head: bytes, tail: bytes) -> Callable[[Stack], Body]:
    """A worker's JSON body padded (inside a string) to one byte over the report limit."""
    pad = MAX_REPORT_BYTES + 1 - len(head) - len(tail)
    return lambda _: ({}, head + b"x" * pad + tail)


@functools.cache
def _gzip_bomb() -> bytes:
    return gzip.compress(b" " * (MAX_OBJECT_INFO_BYTES + 1), compresslevel=1)


def _sized(size: Callable[[Stack], int]) -> Callable[[Stack], Body]:
    return lambda stack: ({}, b"x" * (size(stack) + 1))


BODIES: dict[str, Callable[[Stack], Body]] = {
    "deep-json": lambda _: ({}, b"[" * 100_000 + b"]" * 100_000),
    "invalid-utf8": lambda _: ({}, b'{"prompt": {"\xff\xfe": 1}}'),
    "over-prompt-limit": _over_prompt_limit,
    "over-action-limit": lambda _: ({}, b'{"delete": ["' + b"x" * ACTION_BYTES + b'"]}'),
    "over-upload-limit": _over_upload_limit,
    "many-file-parts": _many_file_parts,
    "over-userdata-limit": _sized(lambda s: _limit(s, "max_userdata_bytes")),
    "over-userdata-limit-json": _over_userdata_limit_json,
    "over-output-limit": _sized(lambda s: _limit(s, "max_output_bytes")),
    "over-workflow-limit": _sized(lambda s: _limit(s, "max_workflow_bytes")),
    "over-preview-limit": _sized(lambda _: MAX_PREVIEW_BYTES),
    "gzip-bomb": lambda _: ({}, _gzip_bomb()),
    "over-report-limit-event": _over_report_limit(
        b'{"attempt": 1, "type": "job.progress", "data": {"pad": "', b'"}}'
    ),
    "over-report-limit-heartbeat": _over_report_limit(b'{"attempt": 1, "job_id": "', b'"}'),
    "over-report-limit-failure": _over_report_limit(
        b'{"attempt": 1, "error": {"type": "x", "message": "', b'"}}'
    ),
}


# -- sending an attempt ----------------------------------------------------------------------------


@dataclass
class Sent:
    """What went out (the answer must not be blamed for echoing what the request carried)."""

    target: str
    headers: dict[str, str]
    body: bytes

    def carries(self, text: str) -> bool:
        blob = self.target + "\n" + "\n".join(f"{k}: {v}" for k, v in self.headers.items())
        return text in blob or quote(text, safe="") in blob or text.encode() in self.body


def _fill(stack: Stack, text: str) -> str:
    return Template(text).substitute(stack.values)


def build(stack: Stack, attack: Attack, address: str) -> Sent:
    """The request an entry describes: its credentials, its own client address (one per row,
    named by the trusted proxy header, so that refused logins of one row never throttle
    another), its headers and its body."""
    headers = {**stack.credentials[attack.who], "X-Forwarded-For": address}
    headers |= {k: _fill(stack, v) for k, v in attack.headers.items()}
    body = b""
    if attack.body is not None:
        body = _fill(stack, attack.body).encode()
    elif attack.body_gen is not None:
        extra, body = BODIES[attack.body_gen](stack)
        headers = extra | headers
    elif attack.multipart:
        parts = [
            (p["name"], _fill(stack, p["filename"]) if "filename" in p else None,
             _fill(stack, p["content"]).encode())
            for p in attack.multipart
        ]  # fmt: skip
        extra, body = multipart(parts)
        headers = extra | headers
    return Sent(_fill(stack, attack.path), headers, body)


def send(stack: Stack, attack: Attack, sent: Sent) -> Answer:
    if attack.method == "WS":
        return _handshake(stack, sent)
    return stack.request(attack.method, sent.target, sent.headers, sent.body)


def _handshake(stack: Stack, sent: Sent) -> Answer:
    """A WebSocket opening: the handshake's status (101 if the server took it)."""
    uri = f"ws://{stack.host}{sent.target}"
    try:
        with connect(uri, additional_headers=sent.headers, open_timeout=TIMEOUT, proxy=None) as ws:
            response = ws.response
            assert response is not None
            return Answer(response.status_code, list(response.headers.raw_items()), b"")
    except websockets.InvalidStatus as refused:
        r = refused.response
        return Answer(r.status_code, list(r.headers.raw_items()), bytes(r.body or b""))


def address(n: int) -> str:
    return f"10.77.{n // 250}.{n % 250 + 1}"


# -- what an answer must not hold ------------------------------------------------------------------


def forbidden(stack: Stack, attack: Attack, sent: Sent) -> dict[str, str]:
    """The row's own list, the stack's secrets, and (for anyone but the instructor, who may
    see the room) every name and text of user002's, less what the request itself carried."""
    found = {f"row: {text}": _fill(stack, text) for text in attack.must_not_reveal}
    found |= stack.always_secret
    if attack.who != "instructor":
        found |= stack.user002_secrets
    return {k: v for k, v in found.items() if not sent.carries(v)}


def revealed(answer: Answer, secrets: dict[str, str]) -> list[str]:
    head = "\n".join(f"{k}: {v}" for k, v in answer.headers)
    leaks = []
    for name, text in secrets.items():
        forms = {text, quote(text, safe=""), quote(text)}
        if any(f in head or f.encode() in answer.body for f in forms):
            leaks.append(name)
    return leaks


def session_issued(answer: Answer) -> bool:
    for name, value in answer.headers:
        if name.lower() == "set-cookie" and value.startswith(f"{SESSION_COOKIE}="):
            cookie = value.split(";", 1)[0].split("=", 1)[1].strip('"')
            if cookie:
                return True
    return False


# -- the stack and what it held before the attempts ------------------------------------------------


@dataclass
class Baseline:
    user002: dict[str, Any]
    outside_user001: dict[str, str]


@pytest.fixture(scope="module")
def stack(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    data = tmp_path_factory.mktemp("attacks") / "data"
    with running_stack(redis_server, f"attacks-{uuid.uuid4().hex[:8]}:", data) as running:
        prepare(running)
        yield running


@pytest.fixture(scope="module")
def baseline(stack: Stack) -> Baseline:
    return Baseline(user002_state(stack), files_outside_user001(stack.data))


@pytest.fixture(scope="module")
def answers() -> dict[str, Answer]:
    return {}


def test_the_table_holds_at_least_100_distinct_attempts() -> None:
    assert len(BY_ID) == len(ATTACKS) >= 100
    requests = {(a.who, a.method, a.path, a.body, a.body_gen, repr(a.multipart),
                 repr(sorted(a.headers.items()))) for a in ATTACKS}  # fmt: skip
    assert len(requests) == len(ATTACKS), "two entries send the same request"
    for attack in ATTACKS:
        assert attack.expect and all(100 <= s < 500 for s in attack.expect), attack.id
        assert attack.body_gen is None or attack.body_gen in BODIES, attack.id
        assert attack.same_as is None or attack.same_as in BY_ID, attack.id


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.id for a in ATTACKS])
def test_attempt(
    stack: Stack, baseline: Baseline, answers: dict[str, Answer], attack: Attack
) -> None:
    sent = build(stack, attack, address(ATTACKS.index(attack)))
    answer = send(stack, attack, sent)
    answers[attack.id] = answer
    detail = f"{attack.method} {sent.target}: {answer.status}\n{answer.text()[:2000]}"
    assert answer.status < 500, detail
    assert answer.status in attack.expect, detail
    assert not revealed(answer, forbidden(stack, attack, sent)), detail
    assert not session_issued(answer), detail
    if attack.same_as is not None:
        other = answers.get(attack.same_as)
        if other is None:  # run alone (-k): ask the other one now
            reference = BY_ID[attack.same_as]
            other = send(stack, reference, build(stack, reference, address(0)))
        assert (answer.status, answer.body) == (other.status, other.body), attack.same_as
    if attack.changes_state:
        assert user002_state(stack) == baseline.user002
        assert files_outside_user001(stack.data) == baseline.outside_user001


def test_user002_and_everything_outside_user001_are_intact(
    stack: Stack, baseline: Baseline
) -> None:
    """After the whole table: user002's files, jobs and sessions are as they were, their
    session and user001's still work, and the card a HEAD and a POST were sent to still logs
    its user in once (neither used it up)."""
    assert user002_state(stack) == baseline.user002
    assert files_outside_user001(stack.data) == baseline.outside_user001
    for who in ("user002", "user001", "teacher"):
        me = stack.request("GET", "/api/me", stack.credentials[who])
        assert me.status == 200 and who.encode() in me.body, (who, me.status)
    card = stack.request("GET", f"/login/card/{stack.values['card_live']}")
    assert card.status == 303 and session_issued(card)
