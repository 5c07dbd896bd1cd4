"""Push endpoints' configuration: what the operator may write, and that secrets never show."""

from __future__ import annotations

import pytest

from queue_manager.core.endpoints import (
    EndpointKind,
    endpoint,
    endpoint_of,
    parse_endpoint_spec,
    parse_header,
    slot_worker,
)
from queue_manager.core.errors import EndpointInvalid
from queue_manager.core.ids import is_name


def test_a_full_configuration_is_kept_and_shown_without_header_values() -> None:
    config = endpoint(
        "verda",
        "https://gpu.example/comfy/",
        slots=2,
        headers=("Authorization: Bearer s3cret", "X-Api-Key:k"),
        outputs="/mnt/out",
        inputs="/mnt/in",
        cold_start_timeout=240,
        job_timeout=600,
    )
    assert config.url == "https://gpu.example/comfy"
    assert config.kind is EndpointKind.COMFYUI
    assert config.headers == (("Authorization", "Bearer s3cret"), ("X-Api-Key", "k"))
    shown = config.shown()
    assert shown["headers"] == {"Authorization": "(hidden)", "X-Api-Key": "(hidden)"}
    assert "s3cret" not in repr(shown) and "s3cret" not in repr(config)
    assert (shown["slots"], shown["outputs"], shown["inputs"]) == (2, "/mnt/out", "/mnt/in")
    assert shown["prefetch"] == 0  # unless asked for: behind a balancer it would oversubscribe


@pytest.mark.parametrize(
    ("name", "url", "options", "says"),
    [
        ("GPU 1", "https://g.example", {}, "names are lowercase"),
        ("gpu1", "ftp://g.example", {}, "not an http(s) URL"),
        ("gpu1", "https://", {}, "not an http(s) URL"),
        ("gpu1", "https://user:pw@g.example", {}, "credentials in a --header"),
        ("gpu1", "https://g.example", {"kind": "modal"}, "kind is one of"),
        ("gpu1", "https://g.example", {"slots": 0}, "slots is 1.."),
        ("gpu1", "https://g.example", {"slots": 1000}, "slots is 1.."),
        ("gpu1", "https://g.example", {"job_timeout": 0}, "positive"),
        ("gpu1", "https://g.example", {"outputs": "relative/dir"}, "absolute folder"),
        ("gpu1", "https://g.example", {"inputs": "s3://bucket"}, "absolute folder"),
        ("gpu1", "https://g.example", {"prefetch": 2}, "prefetch is 0..1"),
        ("gpu1", "https://g.example", {"prefetch": -1}, "prefetch is 0..1"),
        ("gpu1", "https://g.example", {"kind": "runpod", "prefetch": 1}, "for kind comfyui"),
        ("gpu1", "https://g.example", {"kind": "agent", "prefetch": 1}, "for kind comfyui"),
    ],
)
def test_a_wrong_configuration_says_what_to_correct(
    name: str, url: str, options: dict[str, object], says: str
) -> None:
    with pytest.raises(EndpointInvalid, match=says.replace("(", r"\(").replace(")", r"\)")):
        endpoint(name, url, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text", ["no colon", ": value", "Name:", "Bad Name: v", "X: a\r\nInjected: b"]
)
def test_a_header_is_one_name_and_one_line(text: str) -> None:
    with pytest.raises(EndpointInvalid):
        parse_header(text)


def test_ups_spelling_takes_the_same_options_as_endpoint_add() -> None:
    config = parse_endpoint_spec(
        "http://127.0.0.1:8190,slots=2,outputs=/mnt/out,cold-start-timeout=240,"
        "header=Authorization: Bearer x,name=local",
        default_name="endpoint-1",
    )
    assert (config.name, config.url, config.slots) == ("local", "http://127.0.0.1:8190", 2)
    assert (config.outputs, config.cold_start_timeout) == ("/mnt/out", 240.0)
    assert config.headers == (("Authorization", "Bearer x"),)
    assert parse_endpoint_spec("http://h:1", default_name="endpoint-2").name == "endpoint-2"
    assert parse_endpoint_spec("http://h:1,prefetch=1", default_name="e").prefetch == 1
    assert parse_endpoint_spec("http://h:1", default_name="e").prefetch == 0


@pytest.mark.parametrize(
    ("spec", "says"),
    [("http://h:1,speed=fast", "unknown endpoint option"), ("http://h:1,slots=two", "number")],
)
def test_ups_spelling_refuses_what_it_does_not_know(spec: str, says: str) -> None:
    with pytest.raises(EndpointInvalid, match=says):
        parse_endpoint_spec(spec, default_name="e")


def test_a_slot_is_a_worker_no_pull_worker_can_be_named_like() -> None:
    worker = slot_worker("cloud", 2)
    assert worker == "cloud.2"
    assert not is_name(worker)  # a worker token's name has no dot
    assert endpoint_of(worker) == "cloud"
    assert endpoint_of("gpu1") is None
    assert endpoint_of("cloud.x") is None
