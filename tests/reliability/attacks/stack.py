"""One running stack for the attack table: the queue manager on a real uvicorn (a free loopback
port, its own event loop in a thread) over the session's private redis-server, with user002's
things in place for the table to go after, and the credentials each row sends.

What user002 owns (every name and text unique, so a response that carries one has leaked it):
a finished job in history with a real output file, a job running on gpu2, a waiting job, an
uploaded input, a saved workflow and a setting. user001 has a job on gpu1 (the worker rows
act on it) and one pushed to the slot worker `box.1` (the lease token rows).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
import hashlib
import http.client
import json
import threading
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

from fastapi import FastAPI
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from queue_manager.api.app import create_app
from queue_manager.api.auth import SESSION_COOKIE
from queue_manager.cli.redis_server import RedisServer
from queue_manager.core.accounts import Role
from queue_manager.core.credentials import LeaseGrant, mint_lease_token
from queue_manager.core.ids import JobId, UserId, WorkerId
from queue_manager.core.requirements import Capabilities
from queue_manager.service.queue import QueueService
from tests.support.clock import FakeClock
from tests.support.gpu import BUNDLED
from tests.support.graphs import simple_prompt
from tests.support.servers import serve
from tests.support.settings import make_settings

T = TypeVar("T")
TIMEOUT = 10.0
SALT = "cw-session"  # queue_manager.api.auth.Sessions signs with it
SLOT = WorkerId("box.1")

# Small limits, so that a body just over each one is cheap to send.
LIMITS = {
    "max_prompt_bytes": 64 * 1024,
    "max_upload_bytes": 128 * 1024,
    "max_userdata_bytes": 64 * 1024,
    "max_output_bytes": 64 * 1024,
    "max_workflow_bytes": 64 * 1024,
}
PASSWORDS = {
    "user001": "alice-pw-0c41f6",
    "user002": "bob-pw-77e2a9d1",
    "user003": "carol-pw-3b9e",  # signed out by the instructor: a revoked cookie
    "user004": "dave-pw-5d12",  # password reset: a revoked cookie
    "user005": "erin-pw-8a07",  # the login cards
    "teacher": "teacher-pw-41ce",
}
ROLES = {name: Role.INSTRUCTOR if name == "teacher" else Role.PARTICIPANT for name in PASSWORDS}

BOB = {
    "bob_prompt": "giraffe7731secret",
    "bob_output": "bob_giraffe_00001_.png",
    "bob_output_bytes": "BOB-OUTPUT-BYTES-5521",
    "bob_subfolder": "bobdir",
    "bob_upload": "bob-upload-8812.png",
    "bob_upload_bytes": "BOB-UPLOAD-BYTES-2207",
    "bob_userdata": "bob-plan-4410.json",
    "bob_userdata_text": "BOB-WORKFLOW-TEXT-3390",
    "bob_setting": "BOB-SETTING-6612",
}


@dataclass
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def text(self) -> str:
        head = "\n".join(f"{k}: {v}" for k, v in self.headers)
        return head + "\n\n" + self.body.decode("utf-8", "replace")


@dataclass
class Stack:
    app: FastAPI
    loop: asyncio.AbstractEventLoop
    url: str
    data: Path
    clock: FakeClock
    values: dict[str, str] = field(default_factory=dict)  # the table's {placeholders}
    credentials: dict[str, dict[str, str]] = field(default_factory=dict)  # `as` -> headers
    user002_secrets: dict[str, str] = field(default_factory=dict)  # must never leak
    always_secret: dict[str, str] = field(default_factory=dict)  # secrets of the stack

    @property
    def service(self) -> QueueService:
        service: QueueService = self.app.state.service
        return service

    @property
    def host(self) -> str:
        return urlsplit(self.url).netloc

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the server's loop (the app's state lives there)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def request(
        self,
        method: str,
        target: str,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
    ) -> Answer:
        """One request with `target` sent exactly as written (no dot-segment clean-up, no
        re-encoding), over a connection of its own."""
        parts = urlsplit(self.url)
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=TIMEOUT)
        try:
            conn.putrequest(method, target, skip_accept_encoding=True)
            sent = dict(headers or {})
            if body or method in ("POST", "PUT", "PATCH", "DELETE"):
                sent.setdefault("Content-Length", str(len(body)))
            for name, value in sent.items():
                conn.putheader(name, value)
            conn.endheaders(body or None)
            response = conn.getresponse()
            return Answer(response.status, response.getheaders(), response.read())
        finally:
            conn.close()

    def json(self, method: str, target: str, who: str, body: object = None) -> Any:
        raw = b"" if body is None else json.dumps(body).encode()
        headers = {**self.credentials[who], "Content-Type": "application/json"}
        answer = self.request(method, target, headers, raw)
        assert answer.status < 300, (target, answer.status, answer.body[:500])
        return json.loads(answer.body) if answer.body else None


@contextlib.contextmanager
def running_stack(redis_server: RedisServer, prefix: str, data: Path) -> Iterator[Stack]:
    """The app served by uvicorn on a loop of its own, in a thread; stopped on exit."""
    clock = FakeClock(time.time())
    settings = make_settings(
        redis_server, prefix, data_dir=data, lease_seconds=3600.0,
        worker_timeout_seconds=3600.0, **LIMITS,
    )  # fmt: skip
    app = create_app(settings, clock=clock)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="attack-stack", daemon=True)
    thread.start()
    server = serve(app)
    try:
        url = asyncio.run_coroutine_threadsafe(server.__aenter__(), loop).result(60)
        try:
            yield Stack(app, loop, url, data, clock)
        finally:
            asyncio.run_coroutine_threadsafe(server.__aexit__(None, None, None), loop).result(30)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(15)
        loop.close()


# -- preparing the state --------------------------------------------------------------------------


def prepare(stack: Stack) -> None:
    """Accounts, revoked and forged credentials, cards, workers and user002's things."""
    secret = stack.service.settings.secret_key.get_secret_value()
    stack.call(_add_accounts(stack))
    for name in PASSWORDS:
        stack.credentials[name] = {"Cookie": f"{SESSION_COOKIE}={log_in(stack, name)}"}
    stack.values["card_expired"] = _card(stack, "user005", "1m")
    stack.clock.advance(120)  # the card above has expired (the sessions have 12 hours)
    stack.credentials["instructor"] = stack.credentials["teacher"]
    stack.credentials["anonymous"] = {}
    stack.values.update(data=str(stack.data), host=stack.host)
    stack.credentials["user001-basic"] = _basic("user001", PASSWORDS["user001"])
    stack.credentials["user001-wrong-password"] = _basic("user001", "not-the-password")
    _cookies(stack, secret)
    _cards(stack)
    _workers(stack)
    _user002_things(stack)
    _lease_tokens(stack)
    stack.always_secret = {
        "traceback": "Traceback (most recent call last)",
        "python source line": 'File "/',
        "data folder": str(stack.data),
        "session secret": secret,
        "password hash": "$argon2",
        "user002 password": PASSWORDS["user002"],
        "gpu2 token": stack.values["gpu2_token"],
    }
    stack.user002_secrets = {k: v for k, v in stack.values.items() if k.startswith("bob_")}
    stack.user002_secrets["bob_cookie"] = stack.credentials["user002"]["Cookie"].split("=", 1)[1]


async def _add_accounts(stack: Stack) -> None:
    for name, password in PASSWORDS.items():
        await stack.app.state.accounts.add(name, ROLES[name], password)


def _basic(name: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{name}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def log_in(stack: Stack, name: str, password: str | None = None) -> str:
    """A new session of `name` through the login form: the cookie's value."""
    body = f"username={name}&password={quote(password or PASSWORDS[name])}".encode()
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    answer = stack.request("POST", "/login", form, body)
    assert answer.status == 303, answer.text()
    cookie = next(v for k, v in answer.headers if k.lower() == "set-cookie")
    return cookie.split(";", 1)[0].split("=", 1)[1]


class _OldSigner(TimestampSigner):
    """Signs with a timestamp a day and a half old: past the session's 12 hours."""

    def get_timestamp(self) -> int:
        return int(time.time()) - 36 * 3600


def _cookies(stack: Stack, secret: str) -> None:
    """Cookies made the way the app signs them (`api.auth.Sessions`), each wrong in one way."""
    right = URLSafeTimedSerializer(secret, salt=SALT)
    alice = right.loads(stack.credentials["user001"]["Cookie"].split("=", 1)[1])
    bob = right.loads(stack.credentials["user002"]["Cookie"].split("=", 1)[1])
    wrong_key = URLSafeTimedSerializer("not-the-secret-key-" + "x" * 32, salt=SALT)
    old = URLSafeTimedSerializer(secret, salt=SALT, signer=_OldSigner)
    _, stamp, signature = stack.credentials["user001"]["Cookie"].split("=", 1)[1].split(".")
    tampered_payload = right.dumps({"u": "user002", "s": alice["s"]}).split(".")[0]
    cookies = {
        "cookie-forged": wrong_key.dumps({"u": "user002", "s": bob["s"]}),
        "cookie-forged-instructor": wrong_key.dumps({"u": "teacher", "s": "x" * 22}),
        "cookie-tampered": f"{tampered_payload}.{stamp}.{signature}",  # user001's signature
        "cookie-expired": old.dumps(alice),  # user001's live session, signed long ago
        "cookie-swapped": right.dumps({"u": "user002", "s": alice["s"]}),
        "cookie-without-session": right.dumps({"u": "user002"}),
        "cookie-garbage": "eyJ1IjoidXNlcjAwMiJ9.AAAA.BBBB",
        "cookie-revoked-logout": _revoked_by_logout(stack),
        "cookie-revoked-signout": _revoked_by_sign_out(stack),
        "cookie-revoked-reset": _revoked_by_reset(stack),
    }
    for name, value in cookies.items():
        stack.credentials[name] = {"Cookie": f"{SESSION_COOKIE}={value}"}


def _revoked_by_logout(stack: Stack) -> str:
    cookie = log_in(stack, "user001")
    answer = stack.request("POST", "/logout", {"Cookie": f"{SESSION_COOKIE}={cookie}"})
    assert answer.status == 303, answer.text()
    return cookie


def _revoked_by_sign_out(stack: Stack) -> str:
    cookie = log_in(stack, "user003")
    stack.json("POST", "/admin/api/users/user003/sign-out", "teacher")
    return cookie


def _revoked_by_reset(stack: Stack) -> str:
    cookie = log_in(stack, "user004")
    stack.call(stack.app.state.accounts.reset("user004", "dave-new-pw-1a2b"))
    return cookie


def _card(stack: Stack, user: str, expires: str = "12h") -> str:
    made = stack.json("POST", f"/admin/api/cards/{user}", "teacher", {"expires": expires})
    return str(urlsplit(made["link"]).path.rsplit("/", 1)[1])


def _cards(stack: Stack) -> None:
    used = _card(stack, "user005")
    assert stack.request("GET", f"/login/card/{used}").status == 303
    stack.values["card_used"] = used
    revoked = _card(stack, "user005")
    stack.json("DELETE", "/admin/api/cards/user005", "teacher")
    stack.values["card_revoked"] = revoked
    superseded = _card(stack, "user005")
    live = _card(stack, "user005")  # a newer card: the one before stops working
    stack.values["card_superseded"] = superseded
    flip = "A" if live[5] != "A" else "B"
    stack.values["card_tampered"] = live[:5] + flip + live[6:]
    stack.values["card_truncated"] = live[:-1]
    stack.values["card_extended"] = live + "A"
    stack.values["card_case"] = live.swapcase()
    stack.values["card_live"] = live  # never sent: the table only sends its variants


def _workers(stack: Stack) -> None:
    for name in ("gpu1", "gpu2"):
        token = stack.call(stack.app.state.tokens.create(WorkerId(name)))
        stack.values[f"{name}_token"] = token
        stack.credentials[f"worker-{name}"] = {"Authorization": f"Bearer {token}"}
        _register(stack, f"worker-{name}")
    caps = Capabilities(frozenset(BUNDLED))
    stack.call(stack.service.register_worker(SLOT, caps, {}))


def _register(stack: Stack, who: str) -> None:
    stack.json("POST", "/worker/v1/register", who, {"node_types": sorted(BUNDLED)})
    body = gzip.compress(json.dumps(BUNDLED).encode())
    headers = {**stack.credentials[who], "Content-Encoding": "gzip"}
    assert stack.request("PUT", "/worker/v1/object_info", headers, body).status == 204


def _submit(stack: Stack, who: str, prefix: str) -> str:
    body = {"prompt": simple_prompt(prefix), "client_id": f"{who}-page"}
    return str(stack.json("POST", f"/{who}/api/prompt", who, body)["prompt_id"])


def _claim(stack: Stack, who: str, expected: str) -> None:
    job = stack.json("POST", "/worker/v1/claim?wait=0", who)
    assert job["id"] == expected, job


def _user002_things(stack: Stack) -> None:
    stack.values.update(BOB)
    prefix = f"{BOB['bob_subfolder']}/{BOB['bob_prompt']}"
    done = _submit(stack, "user002", prefix)
    _claim(stack, "worker-gpu1", done)
    query = (
        f"attempt=1&filename={BOB['bob_output']}&subfolder={BOB['bob_subfolder']}"
        "&type=output&node_id=2&media=images"
    )
    content = BOB["bob_output_bytes"].encode() * 8
    headers = stack.credentials["worker-gpu1"]
    stored = stack.request("PUT", f"/worker/v1/jobs/{done}/outputs?{query}", headers, content)
    assert stored.status == 201, stored.text()
    stack.json("POST", f"/worker/v1/jobs/{done}/complete", "worker-gpu1", {"attempt": 1})
    stack.values["bob_job"] = done

    alice_running = _submit(stack, "user001", "alice/running")
    _claim(stack, "worker-gpu1", alice_running)
    stack.values["alice_running"] = alice_running
    alice_pushed = _submit(stack, "user001", "alice/pushed")
    claimed = stack.call(stack.service.claim(SLOT, 0))
    assert claimed is not None and claimed.id == alice_pushed
    stack.values["alice_pushed"] = alice_pushed
    bob_running = _submit(stack, "user002", prefix)
    _claim(stack, "worker-gpu2", bob_running)
    stack.values["bob_running"] = bob_running
    stack.values["bob_pending"] = _submit(stack, "user002", prefix)
    _user002_files(stack)


def _user002_files(stack: Stack) -> None:
    bob = stack.credentials["user002"]
    upload = multipart(
        [("image", BOB["bob_upload"], BOB["bob_upload_bytes"].encode()), ("type", None, b"input")]
    )
    answer = stack.request("POST", "/user002/api/upload/image", {**bob, **upload[0]}, upload[1])
    assert answer.status == 200, answer.text()
    saved = json.dumps({"note": BOB["bob_userdata_text"]}).encode()
    path = f"/user002/api/userdata/workflows%2F{BOB['bob_userdata']}"
    assert stack.request("POST", path, bob, saved).status == 200
    setting = json.dumps(BOB["bob_setting"]).encode()
    assert stack.request("POST", "/user002/api/settings/Bob.Note", bob, setting).status == 200


def _lease_tokens(stack: Stack) -> None:
    service = stack.service
    job = JobId(stack.values["alice_pushed"])
    token = service.lease_token(SLOT, job, 1, ttl=3600)
    stack.credentials["lease"] = {"Authorization": f"Bearer {token}"}
    expired = service.lease_token(SLOT, job, 1, ttl=-1)
    stack.credentials["lease-expired"] = {"Authorization": f"Bearer {expired}"}
    prefix, payload, mac = token.split(".")
    raw = json.loads(_unb64(payload))
    raw["j"] = stack.values["bob_running"]
    forged_payload = _b64(json.dumps(raw, separators=(",", ":")).encode())
    stack.credentials["lease-tampered"] = {
        "Authorization": f"Bearer {prefix}.{forged_payload}.{mac}"
    }
    other_secret = "another-secret-key-" + "y" * 32
    grant = LeaseGrant(SLOT, JobId(stack.values["bob_running"]), 1, stack.clock() + 3600)
    stack.credentials["lease-forged"] = {
        "Authorization": f"Bearer {mint_lease_token(other_secret, grant)}"
    }


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# -- bodies ---------------------------------------------------------------------------------------

BOUNDARY = "attackboundary7f3a"


def multipart(parts: list[tuple[str, str | None, bytes]]) -> tuple[dict[str, str], bytes]:
    """A multipart/form-data body: (field name, file name or None, content) per part."""
    out = bytearray()
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        out += f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n".encode()
        if filename is not None:
            out += b"Content-Type: image/png\r\n"
        out += b"\r\n" + content + b"\r\n"
    out += f"--{BOUNDARY}--\r\n".encode()
    return {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}, bytes(out)


# -- what user002 has, to compare before and after ------------------------------------------------


def user002_state(stack: Stack) -> dict[str, Any]:
    """user002's files (by hash), jobs (whole records) and sessions."""
    return stack.call(_user002_state(stack))


async def _user002_state(stack: Stack) -> dict[str, Any]:
    files = await asyncio.to_thread(_files_of, stack.data, "user002")
    jobs = await stack.service.user_jobs(UserId("user002"))
    record = await stack.app.state.accounts._store.record("user002")
    return {
        "files": files,
        "jobs": sorted(j.model_dump_json() for j in jobs),
        "sessions": sorted(record.sessions) if record else None,
        "password": record.password_hash if record else None,
    }


def _files_of(data: Path, user: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for path in sorted(data.rglob("*")):
        rel = path.relative_to(data)
        if rel.parts[1:2] == (user,) and path.is_file():  # outputs/<user>/..., inputs/<user>/...
            found[rel.as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def files_outside_user001(data: Path) -> dict[str, str]:
    """Every file of the data folder but user001's own (which their own rows may change)."""
    found: dict[str, str] = {}
    for path in sorted(data.rglob("*")):
        rel = path.relative_to(data)
        if rel.parts[1:2] != ("user001",) and path.is_file():
            found[rel.as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found
