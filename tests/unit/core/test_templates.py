"""The Templates browser's rules: what a request names, the index a room serves (workshop
first; marked, hidden or left out by mode), and the drawn thumbnails."""

from __future__ import annotations

from typing import Any

import pytest

from queue_manager.core.templates import (
    PARTNER_NOTE,
    TemplateRequest,
    TemplatesMode,
    WorkshopEntry,
    gap_note,
    logo_index,
    parse_request,
    placeholder_svg,
    room_index,
    workshop_category,
)
from queue_manager.core.workflow_needs import Needs

NONE = Needs(frozenset(), frozenset())


def needs(nodes: set[str], models: set[str] = frozenset()) -> Needs:  # type: ignore[assignment]
    return Needs(frozenset(nodes), frozenset(models))


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("index.json", TemplateRequest("index", "index.json")),
        ("index.fr.json", TemplateRequest("index", "index.fr.json", "fr")),
        ("index.pt-BR.json", TemplateRequest("index", "index.pt-BR.json", "pt-BR")),
        ("index.zh-TW.json", TemplateRequest("index", "index.zh-TW.json", "zh-TW")),
        ("index_logo.json", TemplateRequest("logos", "index_logo.json")),
        # The package's other index files are plain files, no locale's index.
        ("index.schema.json", TemplateRequest("workflow", "index.schema")),
        ("index.mcp.json", TemplateRequest("workflow", "index.mcp")),
        ("image_flux2.json", TemplateRequest("workflow", "image_flux2")),
        ("Step 1 - txt2img.json", TemplateRequest("workflow", "Step 1 - txt2img")),
        ("image_flux2-1.webp", TemplateRequest("asset", "image_flux2-1.webp")),
        ("image_flux2-2.svg", TemplateRequest("thumbnail", "image_flux2")),
        ("step-1-1.svg", TemplateRequest("thumbnail", "step-1")),
        ("step-3.svg", TemplateRequest("asset", "step-3.svg")),
        ("-1.svg", TemplateRequest("asset", "-1.svg")),
        ("logo/bfl.png", TemplateRequest("asset", "logo/bfl.png")),
        (".json", TemplateRequest("asset", ".json")),
        ("", None),
        ("/etc/passwd", None),
        ("../../etc/passwd", None),
        ("logo/../index.json", None),
        ("./index.json", None),
        ("logo//bfl.png", None),
        ("logo/", None),
        ("..\\..\\etc\\passwd", None),
        ("index.json\x00", None),
        ("a\nb.json", None),
        ("x" * 301, None),
    ],
)
def test_parse_request(path: str, expected: TemplateRequest | None) -> None:
    assert parse_request(path) == expected


def template(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "title": name.title(), "description": "about " + name,
            "mediaType": "image", "mediaSubtype": "webp", "tags": ["Image"], **fields}  # fmt: skip


OFFICIAL: list[dict[str, Any]] = [
    {"moduleName": "default", "title": "Image", "type": "image",
     "templates": [template("sd15"), template("flux", thumbnailVariant="compareSlider"),
                   template("nano", openSource=False), "junk", {"no": "name"}]},
    {"moduleName": "default", "title": "Audio", "type": "audio",
     "templates": [template("song", mediaType="audio", mediaSubtype="mp3")]},
    {"moduleName": "default", "title": "Empty", "templates": "junk"},
]  # fmt: skip
GAPS = {"sd15": NONE, "flux": needs({"FluxNode"}, {"flux.safetensors"}), "nano": NONE,
        "song": NONE}  # fmt: skip
EVERY_FILE = {"sd15-1.webp", "flux-1.webp", "flux-2.webp", "nano-1.webp", "song-1.mp3"}


def index(mode: TemplatesMode, gaps: dict[str, Needs] | None = GAPS, files: set[str] = EVERY_FILE,
          workshop: dict[str, Any] | None = None) -> list[dict[str, Any]]:  # fmt: skip
    return room_index(OFFICIAL, workshop, mode, gaps, files.__contains__)


def shown(idx: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for c in idx for t in c["templates"]}


def test_all_shows_every_official_template_as_it_is() -> None:
    idx = index(TemplatesMode.ALL)
    assert [c["title"] for c in idx] == ["Image", "Audio"]
    assert list(shown(idx)) == ["sd15", "flux", "nano", "song"]
    assert shown(idx)["flux"] == template("flux", thumbnailVariant="compareSlider")


def test_mark_says_what_the_gpus_lack_and_partner_templates_say_where_they_run() -> None:
    got = shown(index(TemplatesMode.MARK))
    assert got["sd15"] == template("sd15")
    assert got["flux"]["description"] == (
        "Needs what this workshop's GPUs don't have: models flux.safetensors; "
        "node types FluxNode. about flux"
    )
    assert got["flux"]["tags"] == ["Missing models", "Missing nodes", "Image"]
    assert got["nano"]["description"] == PARTNER_NOTE + "about nano"
    assert got["nano"]["tags"] == ["Image"]  # the page gives partner templates a badge


def test_hide_keeps_only_what_the_gpus_run_and_drops_emptied_categories() -> None:
    gaps = {**GAPS, "song": needs(set(), {"song.ckpt"})}
    idx = index(TemplatesMode.HIDE, gaps)
    assert [c["title"] for c in idx] == ["Image"]
    assert list(shown(idx)) == ["sd15"]


def test_before_any_gpu_reported_only_partner_templates_are_marked() -> None:
    assert list(shown(index(TemplatesMode.HIDE, None))) == ["sd15", "flux", "song"]
    assert shown(index(TemplatesMode.MARK, None))["flux"] == shown(index(TemplatesMode.ALL))["flux"]


def test_off_leaves_only_the_workshop() -> None:
    workshop = workshop_category([WorkshopEntry("Step 1", NONE)], lambda _: "2026-01-01")
    assert index(TemplatesMode.OFF) == []
    assert index(TemplatesMode.OFF, workshop=workshop) == [workshop]


def test_the_workshop_comes_first_and_its_names_take_the_official_ones_places() -> None:
    entries = [WorkshopEntry("Step 2", needs({"X"})), WorkshopEntry("sd15", NONE, 86400.0)]
    workshop = workshop_category(entries, lambda t: f"day {t:.0f}")
    idx = index(TemplatesMode.MARK, workshop=workshop)
    assert idx[0]["title"] == "Workshop" and idx[0]["isEssential"] is True
    assert [t["name"] for t in idx[0]["templates"]] == ["Step 2", "sd15"]
    first, second = idx[0]["templates"]
    assert first["description"].startswith(
        "Needs what this workshop's GPUs don't have: node types X"
    )
    assert first["tags"] == ["Missing nodes", "Workshop"]
    assert (second["date"], second["mediaSubtype"], second["tags"]) == (
        "day 86400",
        "svg",
        ["Workshop"],
    )
    assert list(shown(idx)) == ["Step 2", "sd15", "flux", "nano", "song"]
    assert index(TemplatesMode.ALL, workshop=workshop_category([], str))[0]["title"] == "Image"


def test_templates_whose_thumbnails_are_not_installed_get_drawn_ones() -> None:
    got = shown(index(TemplatesMode.ALL, files={"flux-1.webp", "nano-1.webp"}))
    assert (got["sd15"]["mediaType"], got["sd15"]["mediaSubtype"]) == ("image", "svg")
    # Two pictures wanted, one there: drawn, and shown as one picture.
    assert got["flux"]["mediaSubtype"] == "svg" and "thumbnailVariant" not in got["flux"]
    assert got["nano"] == template("nano", openSource=False)
    assert (got["song"]["mediaType"], got["song"]["mediaSubtype"]) == ("image", "svg")


def test_a_long_gap_names_four_and_counts_the_rest() -> None:
    gap = needs(set(), {f"m{i}.pt" for i in range(6)})
    assert gap_note(gap) == (
        "Needs what this workshop's GPUs don't have: models m0.pt, m1.pt, m2.pt, m3.pt and 2 more. "
    )
    assert gap_note(NONE) == gap_note(None) == ""


def test_only_installed_logos_are_listed() -> None:
    logos = {"BFL": "logo/bfl.png", "Odd": 3, "Gone": "logo/gone.png"}
    assert logo_index(logos, {"logo/bfl.png"}.__contains__) == {"BFL": "logo/bfl.png"}


def test_a_drawn_thumbnail_escapes_its_title_and_keeps_its_colour() -> None:
    svg = placeholder_svg("<script>alert(1)</script> & a very long title that wraps around", "W")
    assert svg.startswith(b"<svg") and b"<script>" not in svg and b"&lt;script&gt;" in svg
    assert svg.count(b"<tspan") >= 2
    assert placeholder_svg("same", "W") == placeholder_svg("same", "W")
    assert placeholder_svg("same", "W") != placeholder_svg("other", "W")
