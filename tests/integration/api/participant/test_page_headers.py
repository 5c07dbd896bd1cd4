"""The participant's page: what keeps it home (its Content-Security-Policy) and the `user.css`
it links on every load."""

from __future__ import annotations

import httpx


async def test_the_page_may_connect_to_this_server_only(alice: httpx.AsyncClient) -> None:
    page = await alice.get("/user001/")
    assert page.status_code == 200
    assert page.headers["content-security-policy"] == "connect-src 'self' blob: data:"


async def test_the_linked_user_css_is_an_empty_stylesheet_for_its_owner_only(
    alice: httpx.AsyncClient, bob: httpx.AsyncClient, nobody: httpx.AsyncClient
) -> None:
    css = await alice.get("/user001/user.css")
    assert (css.status_code, css.content, css.headers["content-type"]) == (
        200,
        b"",
        "text/css; charset=utf-8",
    )
    assert (await bob.get("/user001/user.css")).status_code == 404
    anonymous = await nobody.get("/user001/user.css")
    assert (anonymous.status_code, anonymous.headers["location"]) == (
        303,
        "/login?next=/user001/user.css",
    )
