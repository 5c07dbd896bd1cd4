"""Whose address a login counts against (`core.throttling`): the peer's, unless the peer is a
trusted proxy. Pure functions, as tables (they would sit as well under tests/unit/core/)."""

from __future__ import annotations

import pytest

from queue_manager.core.throttling import address_bucket, client_address, parse_networks

LOOPBACK = parse_networks("127.0.0.0/8, ::1")
TWO_PROXIES = parse_networks("127.0.0.1, 10.0.0.0/8")


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "real_ip", "trusted", "expected"),
    [
        # No proxy: the connection says who it is, whatever the headers claim.
        ("198.51.100.7", None, None, LOOPBACK, "198.51.100.7"),
        ("198.51.100.7", "203.0.113.1", "203.0.113.1", LOOPBACK, "198.51.100.7"),
        (None, "203.0.113.1", None, LOOPBACK, "unknown"),
        # nginx on loopback: it appends the client to whatever the client sent.
        ("127.0.0.1", "198.51.100.7", "198.51.100.7", LOOPBACK, "198.51.100.7"),
        ("127.0.0.1", "6.6.6.6, 198.51.100.7", "198.51.100.7", LOOPBACK, "198.51.100.7"),
        ("::1", "2001:db8::5", None, LOOPBACK, "2001:db8::5"),
        ("127.0.0.1", None, "198.51.100.7", LOOPBACK, "198.51.100.7"),
        ("127.0.0.1", None, "not-an-address", LOOPBACK, "127.0.0.1"),
        ("127.0.0.1", None, None, LOOPBACK, "127.0.0.1"),
        # A chain of trusted proxies is walked from the right; a client's hop stops it.
        ("127.0.0.1", "198.51.100.7, 10.1.2.3", None, TWO_PROXIES, "198.51.100.7"),
        ("127.0.0.1", "10.9.9.9, 10.1.2.3", None, TWO_PROXIES, "10.9.9.9"),
        # Garbage passed on by a trusted proxy: only what it vouched for counts.
        ("127.0.0.1", "6.6.6.6, garbage, 10.1.2.3", None, TWO_PROXIES, "10.1.2.3"),
        # Trusting nobody: headers never count.
        ("127.0.0.1", "198.51.100.7", "198.51.100.7", (), "127.0.0.1"),
    ],
)
def test_the_client_address_comes_from_the_peer_or_a_trusted_proxy(
    peer: str | None,
    forwarded_for: str | None,
    real_ip: str | None,
    trusted: tuple[object, ...],
    expected: str,
) -> None:
    assert client_address(peer, forwarded_for, real_ip, trusted) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("address", "bucket"),
    [
        ("198.51.100.7", "198.51.100.7"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::9", "2001:db8:1:2::/64"),
        ("::ffff:198.51.100.7", "198.51.100.7"),
        ("testclient", "unknown"),
    ],
)
def test_addresses_are_counted_by_host_and_ipv6_by_its_64(address: str, bucket: str) -> None:
    assert address_bucket(address) == bucket


def test_trusted_proxies_that_are_not_networks_are_refused() -> None:
    with pytest.raises(ValueError, match="does not appear to be"):
        parse_networks("127.0.0.1, nginx.local")
