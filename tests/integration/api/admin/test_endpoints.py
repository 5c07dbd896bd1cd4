"""Push endpoints from the instructor's API: added, replaced and removed live, secrets never
shown back, participants refused."""

from __future__ import annotations

import httpx


async def test_the_instructor_adds_lists_and_removes_an_endpoint_without_seeing_its_secret(
    teacher: httpx.AsyncClient, alice: httpx.AsyncClient
) -> None:
    body = {"url": "https://gpu.example/", "slots": 2, "headers": ["Authorization: Bearer s3"]}
    r = await teacher.put("/admin/api/endpoints/verda", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["headers"] == {"Authorization": "(hidden)"}
    listed = (await teacher.get("/admin/api/endpoints")).json()
    assert [(e["name"], e["url"], e["slots"]) for e in listed] == [
        ("verda", "https://gpu.example", 2)
    ]
    assert "s3" not in (await teacher.get("/admin/api/endpoints")).text
    replaced = await teacher.put("/admin/api/endpoints/verda", json={**body, "slots": 3})
    assert replaced.json()["slots"] == 3
    assert (await alice.get("/admin/api/endpoints")).status_code == 403
    assert (await alice.put("/admin/api/endpoints/x", json=body)).status_code == 403
    assert (await teacher.delete("/admin/api/endpoints/verda")).status_code == 200
    assert (await teacher.get("/admin/api/endpoints")).json() == []
    assert (await teacher.delete("/admin/api/endpoints/verda")).status_code == 404


async def test_a_wrong_endpoint_is_a_clear_400(teacher: httpx.AsyncClient) -> None:
    r = await teacher.put("/admin/api/endpoints/gpu1", json={"url": "ftp://nope"})
    assert r.status_code == 400
    assert "http(s) URL" in r.json()["error"]["message"]
    r = await teacher.put(
        "/admin/api/endpoints/gpu1", json={"url": "https://g.example", "headers": ["x"]}
    )
    assert r.status_code == 400
