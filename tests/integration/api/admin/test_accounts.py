"""The instructor's participant accounts (`/admin/api/accounts`): made, logged in with, removed
with their files; refusals change nothing."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from queue_manager.service.accounts import Accounts
from tests.support.graphs import simple_prompt
from tests.support.participants import client_for


def accounts_of(app: FastAPI) -> Accounts:
    accounts: Accounts = app.state.accounts
    return accounts


async def test_a_made_account_logs_in_and_its_removal_takes_its_files(
    app: FastAPI, teacher: httpx.AsyncClient
) -> None:
    made = await teacher.post("/admin/api/accounts", json={"name": "rehearsal-001"})
    assert made.status_code == 201, made.text
    assert made.headers["cache-control"] == "no-store"
    body = made.json()
    assert (body["name"], body["role"]) == ("rehearsal-001", "participant")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://testserver",
        auth=("rehearsal-001", body["password"]),
    ) as participant:
        assert (await participant.get("/api/me")).json()["name"] == "rehearsal-001"
    data = app.state.service.settings.data_dir
    (data / "outputs" / "rehearsal-001").mkdir(parents=True)
    (data / "outputs" / "rehearsal-001" / "a.png").write_bytes(b"png")
    (data / "outputs" / "user001").mkdir(parents=True)

    gone = await teacher.delete("/admin/api/accounts/rehearsal-001", params={"files": "true"})

    assert gone.status_code == 200, gone.text
    assert gone.json() == {"ok": True, "folders": 1}
    assert await accounts_of(app).get("rehearsal-001") is None
    assert not (data / "outputs" / "rehearsal-001").exists()
    assert (data / "outputs" / "user001").is_dir()


async def test_removing_an_account_cancels_its_waiting_jobs(
    app: FastAPI, teacher: httpx.AsyncClient
) -> None:
    made = await teacher.post(
        "/admin/api/accounts", json={"name": "leaving", "password": "a-long-password"}
    )
    assert made.status_code == 201
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://testserver",
        auth=("leaving", "a-long-password"),
    ) as participant:
        sent = await participant.post("/leaving/api/prompt", json={"prompt": simple_prompt()})
    assert sent.status_code == 200, sent.text
    job_id = sent.json()["prompt_id"]

    assert (await teacher.delete("/admin/api/accounts/leaving")).status_code == 200

    record = await teacher.get(f"/admin/api/jobs/{job_id}")
    assert record.json()["status"] == "cancelled"


async def test_a_chosen_password_is_kept(app: FastAPI, teacher: httpx.AsyncClient) -> None:
    made = await teacher.post(
        "/admin/api/accounts", json={"name": "late-comer", "password": "a-long-password"}
    )
    assert made.json()["password"] == "a-long-password"
    assert await accounts_of(app).verify("late-comer", "a-long-password", "10.0.0.9")


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"name": "user001"}, 409, "exists already"),
        ({"name": "Bad Name"}, 400, "lowercase"),
        ({"name": "admin"}, 400, "path the server uses"),
        ({"name": "shorty", "password": "x"}, 400, "at least"),
    ],
)
async def test_a_bad_account_is_refused_and_changes_nothing(
    app: FastAPI, teacher: httpx.AsyncClient, body: dict[str, str], status: int, says: str
) -> None:
    before = {a.name for a in await accounts_of(app).all()}
    answer = await teacher.post("/admin/api/accounts", json=body)
    assert answer.status_code == status
    assert says in answer.json()["error"]["message"]
    assert {a.name for a in await accounts_of(app).all()} == before


async def test_an_instructor_or_unknown_account_is_not_removed(
    app: FastAPI, teacher: httpx.AsyncClient
) -> None:
    refused = await teacher.delete("/admin/api/accounts/teacher")
    assert refused.status_code == 400
    assert "comfy-workshop users remove" in refused.json()["error"]["message"]
    assert await accounts_of(app).get("teacher") is not None
    assert (await teacher.delete("/admin/api/accounts/nobody-here")).status_code == 404


async def test_participants_and_strangers_cannot_touch_accounts(app: FastAPI) -> None:
    for who, status in (("user001", 403), (None, 401)):
        async with client_for(app, who) as client:
            made = await client.post("/admin/api/accounts", json={"name": "sneaky"})
            gone = await client.delete("/admin/api/accounts/user002")
        assert (made.status_code, gone.status_code) == (status, status)
    assert await accounts_of(app).get("sneaky") is None
    assert await accounts_of(app).get("user002") is not None
