"""Login cards' pure rules: tokens, what Redis keeps of them, lifetimes, addresses, states."""

from __future__ import annotations

import hashlib

import pytest

from queue_manager.core.accounts import Role
from queue_manager.core.cards import (
    CardState,
    IssuedCard,
    binding,
    card_digest,
    is_card_token,
    login_link,
    new_card_token,
    parse_lifetime,
    printed,
    public_url,
    state_of,
)
from queue_manager.core.ids import UserId


def test_a_token_is_43_url_safe_characters_and_never_repeats() -> None:
    tokens = {new_card_token() for _ in range(200)}
    assert len(tokens) == 200
    assert all(is_card_token(t) for t in tokens)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "a" * 42,
        "a" * 44,
        "a" * 42 + "=",
        "a" * 42 + "/",
        "a" * 42 + " ",
        "ä" * 43,
        "a" * 42 + "\n",
    ],
)
def test_anything_but_a_token_is_not_one(text: str) -> None:
    assert not is_card_token(text)


def test_redis_keeps_the_sha256_of_a_token_only() -> None:
    token = new_card_token()
    assert card_digest(token) == hashlib.sha256(token.encode()).hexdigest()
    assert token not in card_digest(token)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("12h", 43200),
        ("90m", 5400),
        ("2h30m", 9000),
        ("1d", 86400),
        (" 1.5h ", 5400),
        ("45m 30s", 2730),
        ("30d", 30 * 86400),
    ],
)
def test_lifetimes_read_as_people_write_them(text: str, seconds: float) -> None:
    assert parse_lifetime(text) == seconds


@pytest.mark.parametrize("text", ["", "12", "h", "12x", "-1h", "12h!", "59s", "31d", "1e3h"])
def test_a_bad_lifetime_says_what_is_expected(text: str) -> None:
    with pytest.raises(ValueError, match=r"lifetime|lives"):
        parse_lifetime(text)


@pytest.mark.parametrize(
    ("given", "normal"),
    [
        ("https://workshop.example", "https://workshop.example/"),
        ("http://127.0.0.1:8188/", "http://127.0.0.1:8188/"),
        ("https://host.example/workshop", "https://host.example/workshop/"),
    ],
)
def test_a_public_address_ends_with_a_slash(given: str, normal: str) -> None:
    assert public_url(given) == normal
    token = new_card_token()
    assert login_link(given, token) == f"{normal}login/card/{token}"


@pytest.mark.parametrize(
    "given", ["workshop.example", "ftp://host/", "https://", "https://h/?x=1", "https://h/#a", ""]
)
def test_a_public_address_must_be_an_http_url(given: str) -> None:
    with pytest.raises(ValueError, match="public URL"):
        public_url(given)


def test_a_printed_card_names_the_page_its_account_lands_on() -> None:
    base = "https://w.example/"
    student = IssuedCard(UserId("user001"), Role.PARTICIPANT, "ab12cd", "t" * 43, 1.0, "pw")
    teacher = IssuedCard(UserId("teacher"), Role.INSTRUCTOR, "ef34ab", "u" * 43, 1.0, None)
    assert printed(student, base).url == "https://w.example/user001/"
    assert printed(student, base).link == f"https://w.example/login/card/{'t' * 43}"
    assert printed(teacher, base).url == "https://w.example/admin/"
    assert printed(teacher, base).password is None


NOW = 1000.0
BOUND = binding("$argon2id$hash", Role.PARTICIPANT)


@pytest.mark.parametrize(
    ("stored", "expires", "current", "state"),
    [
        ("", NOW + 1, BOUND, CardState.ACTIVE),
        ("", NOW, BOUND, CardState.EXPIRED),
        ("used", NOW + 1, BOUND, CardState.USED),
        ("used", NOW - 1, BOUND, CardState.USED),
        ("revoked", NOW + 1, BOUND, CardState.REVOKED),
        ("", NOW + 1, binding("$argon2id$other", Role.PARTICIPANT), CardState.STALE),
        ("", NOW + 1, binding("$argon2id$hash", Role.INSTRUCTOR), CardState.STALE),
        ("", NOW + 1, None, CardState.STALE),
    ],
)
def test_a_card_state_follows_its_record_and_its_account(
    stored: str, expires: float, current: str | None, state: CardState
) -> None:
    assert state_of(stored, expires, BOUND, current, NOW) is state
