"""Published workflows in a participant's user data: listed under `workflows/Workshop/`, read
with a seed of their own where asked, read-only (a save keeps their own copy, a new version
never overwrites it), and the first visit opens the first one once."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

import httpx

from tests.support.gpu import Gpu
from tests.support.graphs import sampler

UI = (Path(__file__).parents[3] / "data" / "workflows" / "txt2img-ui.json").read_bytes()


def enc(path: str) -> str:
    return quote(path, safe="")


async def publish(teacher: httpx.AsyncClient, name: str, body: bytes, **params: object) -> None:
    r = await teacher.post("/admin/api/workflows", params={"name": name, **params}, content=body)
    assert r.status_code == 200, r.text


async def test_published_workflows_are_listed_and_read_in_every_listing_shape(
    teacher: httpx.AsyncClient, alice: httpx.AsyncClient
) -> None:
    # Nothing published or saved yet: empty (the page lists it on every load, test_userdata.py).
    assert (await alice.get("/user001/api/userdata?dir=workflows&recurse=true")).json() == []
    await publish(teacher, "Step 1", UI)
    await publish(teacher, "Step 2", json.dumps(sampler(3)).encode())
    r = await alice.get(
        "/user001/api/userdata?dir=workflows&recurse=true&split=false&full_info=true"
    )
    assert r.status_code == 200, r.text
    assert sorted(e["path"] for e in r.json()) == ["Workshop/Step 1.json", "Workshop/Step 2.json"]
    plain = await alice.get("/user001/api/userdata?dir=workflows&recurse=true")
    assert sorted(plain.json()) == ["Workshop/Step 1.json", "Workshop/Step 2.json"]
    inside = await alice.get("/user001/api/userdata?dir=workflows/Workshop")
    assert sorted(inside.json()) == ["Step 1.json", "Step 2.json"]
    flat = await alice.get("/user001/api/userdata?dir=workflows")
    assert flat.json() == []
    v2 = (await alice.get("/user001/api/v2/userdata?path=workflows")).json()
    assert [(i["path"], i["type"]) for i in v2] == [
        ("workflows/Workshop", "directory"),
        ("workflows/Workshop/Step 1.json", "file"),
        ("workflows/Workshop/Step 2.json", "file"),
    ]
    got = await alice.get(f"/user001/api/userdata/{enc('workflows/Workshop/Step 1.json')}")
    assert got.status_code == 200 and got.json() == json.loads(UI)
    missing = await alice.get(f"/user001/api/userdata/{enc('workflows/Workshop/nope.json')}")
    assert missing.status_code == 404


async def test_a_save_keeps_the_participants_own_copy_and_a_new_version_never_touches_it(
    teacher: httpx.AsyncClient, alice: httpx.AsyncClient, bob: httpx.AsyncClient
) -> None:
    await publish(teacher, "Step 1", UI)
    mine = json.loads(UI)
    mine["nodes"][1]["widgets_values"] = ["my own prompt"]
    path = enc("workflows/Workshop/Step 1.json")
    r = await alice.post(f"/user001/api/userdata/{path}?overwrite=true&full_info=true",
                         content=json.dumps(mine))  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json()["path"] == "workflows/Step 1.json"
    own = await alice.get(f"/user001/api/userdata/{enc('workflows/Step 1.json')}")
    assert own.json() == mine
    assert (await alice.get(f"/user001/api/userdata/{path}")).json() == json.loads(UI)
    v2 = json.loads(UI)
    v2["nodes"][1]["widgets_values"] = ["version two"]
    await publish(teacher, "Step 1", json.dumps(v2).encode())
    assert (await alice.get(f"/user001/api/userdata/{path}")).json() == v2
    assert (await alice.get(f"/user001/api/userdata/{enc('workflows/Step 1.json')}")).json() == mine
    # Bob saw none of it.
    listed = (await bob.get("/user001/api/userdata?dir=workflows&recurse=true")).status_code
    assert listed == 404
    assert sorted((await bob.get("/user002/api/userdata?dir=workflows&recurse=true")).json()) == [
        "Workshop/Step 1.json"
    ]


async def test_renaming_moving_into_or_deleting_from_the_workshop_folder_is_refused(
    teacher: httpx.AsyncClient, alice: httpx.AsyncClient
) -> None:
    await publish(teacher, "Step 1", UI)
    await alice.post(f"/user001/api/userdata/{enc('workflows/mine.json')}", content=b"{}")
    published = enc("workflows/Workshop/Step 1.json")
    for method, url in [
        ("DELETE", f"/user001/api/userdata/{published}"),
        ("POST", f"/user001/api/userdata/{published}/move/{enc('workflows/x.json')}"),
        ("POST", f"/user001/api/userdata/{enc('workflows/mine.json')}/move/{published}"),
        ("POST", f"/user001/api/userdata/{enc('workflows/mine.json')}/move/"
                 f"{enc('workflows/workshop/other.json')}"),
        ("POST", f"/user001/api/userdata/{enc('workflows/Workshop/sub/x.json')}"),
        ("POST", f"/user001/api/userdata/{enc('workflows/Workshop')}"),
    ]:  # fmt: skip
        r = await alice.request(method, url, content=b"{}")
        assert r.status_code == 403, (method, url, r.status_code, r.text)
        assert "instructor's" in r.text
    assert (await alice.get(f"/user001/api/userdata/{published}")).json() == json.loads(UI)
    assert (await alice.get(f"/user001/api/userdata/{enc('workflows/mine.json')}")).json() == {}
    assert (await teacher.get("/admin/api/workflows")).json()[0]["version"] == 1


async def test_each_participant_gets_a_seed_of_their_own_where_the_workflow_asks(
    teacher: httpx.AsyncClient, alice: httpx.AsyncClient, bob: httpx.AsyncClient, online_gpu: Gpu
) -> None:
    await publish(teacher, "ui", UI, randomize_seed="true")
    await publish(teacher, "api", json.dumps(sampler(3)).encode(), randomize_seed="true")
    await publish(teacher, "same", UI)

    async def seeds(client: httpx.AsyncClient, user: str) -> tuple[int, int, int]:
        base = f"/{user}/api/userdata/"
        ui = (await client.get(base + enc("workflows/Workshop/ui.json"))).json()
        api = (await client.get(base + enc("workflows/Workshop/api.json"))).json()
        same = (await client.get(base + enc("workflows/Workshop/same.json"))).json()
        sampler_node = next(n for n in ui["nodes"] if n["type"] == "KSampler")
        plain = next(n for n in same["nodes"] if n["type"] == "KSampler")
        assert sampler_node["widgets_values"][1:] == ["fixed", 4, 8, "euler", "normal", 1]
        return (
            sampler_node["widgets_values"][0],
            api["3"]["inputs"]["seed"],
            plain["widgets_values"][0],
        )

    a, b = await seeds(alice, "user001"), await seeds(bob, "user002")
    assert a[0] != b[0] and a[1] != b[1]
    assert a[2] == b[2] == 42
    assert a == await seeds(alice, "user001")  # stable for one version


async def test_the_first_visit_opens_the_first_workflow_once(
    teacher: httpx.AsyncClient, alice: httpx.AsyncClient, bob: httpx.AsyncClient
) -> None:
    assert (await alice.get("/user001/api/workshop/welcome")).json() == {"workflow": None}
    await publish(teacher, "Intro", UI)
    await publish(teacher, "Step 2", UI, first="true")
    shown = (await alice.get("/user001/api/workshop/welcome")).json()
    assert shown == {"workflow": {"name": "Step 2", "path": "workflows/Workshop/Step 2.json"}}
    assert (await alice.post("/user001/api/workshop/welcome")).status_code == 200
    assert (await alice.get("/user001/api/workshop/welcome")).json() == {"workflow": None}
    assert (await bob.get("/user002/api/workshop/welcome")).json()["workflow"]["name"] == "Step 2"
    assert (await bob.get("/user001/api/workshop/welcome")).status_code == 404
