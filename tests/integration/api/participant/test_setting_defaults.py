"""The workshop's default settings beneath each participant's own (`GET /settings`), and the
instructor's `/admin/api/defaults`."""

from __future__ import annotations

import httpx

from queue_manager.core.setting_defaults import BUILT_IN

A = "/user001/api"
D = "/admin/api/defaults"


async def test_a_new_participant_reads_the_workshops_defaults(alice: httpx.AsyncClient) -> None:
    assert BUILT_IN["Comfy.TutorialCompleted"] is True  # no template browser on the first visit
    assert (await alice.get(f"{A}/settings")).json() == BUILT_IN
    one = await alice.get(f"{A}/settings/Comfy.TutorialCompleted")
    assert (one.status_code, one.content) == (200, b"true")
    assert (await alice.get(f"{A}/settings/Comfy.Locale")).json() is None


async def test_a_participants_own_setting_wins_and_the_others_keep_the_default(
    alice: httpx.AsyncClient, bob: httpx.AsyncClient, teacher: httpx.AsyncClient
) -> None:
    await alice.post(f"{A}/settings/Comfy.TutorialCompleted", content=b"false")
    assert (await alice.get(f"{A}/settings/Comfy.TutorialCompleted")).json() is False
    assert (await bob.get("/user002/api/settings/Comfy.TutorialCompleted")).json() is True
    # A default the instructor adds later reaches everyone who has not set it, at once.
    changed = await teacher.put(D, json={"Comfy.TutorialCompleted": True, "Comfy.Locale": "fr"})
    assert changed.status_code == 200, changed.text
    assert (await alice.get(f"{A}/settings")).json() == {
        "Comfy.TutorialCompleted": False,
        "Comfy.Locale": "fr",
    }
    await bob.post("/user002/api/settings", json={"Comfy.Locale": "de"})
    assert (await bob.get("/user002/api/settings/Comfy.Locale")).json() == "de"


async def test_the_instructor_lists_and_replaces_the_defaults(
    teacher: httpx.AsyncClient, alice: httpx.AsyncClient
) -> None:
    listed = await teacher.get(D)
    assert (listed.status_code, listed.json()) == (200, BUILT_IN)
    wanted = {"Comfy.TutorialCompleted": True, "Comfy.Sidebar.Location": "right"}
    replaced = await teacher.put(D, json=wanted)
    assert (replaced.status_code, replaced.json()) == (200, wanted)
    assert (await teacher.get(D)).json() == wanted
    assert (await alice.get(f"{A}/settings")).json() == wanted
    emptied = await teacher.put(D, json={})
    assert (emptied.status_code, emptied.json()) == (200, {})
    assert (await alice.get(f"{A}/settings")).json() == {}


async def test_bad_defaults_are_refused_and_change_nothing(teacher: httpx.AsyncClient) -> None:
    for body in [
        b"[1, 2]",
        b"not json",
        b'{"Comfy.X": NaN}',
        b'{"has space": 1}',
        b'{"": 1}',
        b'{"Comfy.X": "' + b"x" * 70_000 + b'"}',
        b'{"Comfy.X": ' + b"[" * 200 + b"]" * 200 + b"}",
    ]:
        r = await teacher.put(D, content=body)
        assert r.status_code == 400, (body[:40], r.text)
    huge = await teacher.put(D, content=b'{"Comfy.X": "' + b"x" * 2_000_000 + b'"}')
    assert huge.status_code == 400
    assert "over" in huge.text
    assert (await teacher.get(D)).json() == BUILT_IN


async def test_only_the_instructor_reaches_the_defaults(
    alice: httpx.AsyncClient, nobody: httpx.AsyncClient
) -> None:
    for client in (alice, nobody):
        assert (await client.get(D)).status_code in (401, 403)
        assert (await client.put(D, json={"Comfy.X": 1})).status_code in (401, 403)
    assert (await alice.get(f"{A}/settings")).json() == BUILT_IN
