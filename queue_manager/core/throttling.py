"""Login throttling: how many wrong passwords buy how long a wait, and whose address counts.

Every password check (the login form, and HTTP Basic when its password is not a remembered
success) first asks `store/lua/login_attempt.lua`, which refuses with the seconds left to
wait, or counts the attempt as a failure in the same step and lets it go on to argon2; a right
password then takes its charge back (`login_succeeded.lua`). So a storm of guesses costs one
Redis call each and no argon2 at all once refused, and a burst of parallel guesses gets no
more than the free allowance through. Three counts, each forgotten `window` after its last
failure:

* **(account, address)**: `free` failures, then a wait of `backoff` seconds doubling with each
  further failure, capped at `max_backoff`. This is what stops one guesser. A right password
  from that address starts it again.
* **address**, all accounts together: the same back-off past `address_free` failures, which
  stops one address spraying many accounts. A whole room sits behind one NAT or Wi-Fi address,
  so this allowance is generous (100: twenty people mistyping a few times each never meet it;
  a broken script's own (account, address) back-off keeps it to a few dozen failures per
  window). A success only takes back its own charge: logging into one's own account must not
  clear an attacker's count.
* **account**, from all addresses: past `account_free` failures each try waits `backoff`
  seconds at most, never more. It slows many addresses guessing one account and never locks it:
  failures from elsewhere must not shut a participant out of a live workshop.

The hard case stays hard: a guesser on the room's own address is that address, so the
participant they target shares their (account, address) wait. The cap keeps that to a delay
(60 s by default), never a lock-out, a right password clears it, sessions already open are
never affected, and a remembered success (a script's HTTP Basic) skips the check. Refused
attempts are not counted, so hammering does not lengthen the wait.

The address is the connection's peer, or what a trusted proxy (`CW_TRUSTED_PROXIES`, loopback
by default: nginx in front) says the client was; an IPv6 client counts by its /64, which one
host can fill on its own.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
IPV6_BUCKET = 64
UNKNOWN = "unknown"


@dataclass(frozen=True)
class LoginLimits:
    free: int = 5
    address_free: int = 100
    account_free: int = 50
    backoff: float = 1.0
    max_backoff: float = 60.0
    window: float = 900.0


def parse_networks(text: str) -> tuple[Network, ...]:
    """`127.0.0.0/8, ::1` -> networks (a bare address is a network of one); ValueError if not."""
    return tuple(ipaddress.ip_network(part.strip()) for part in text.split(",") if part.strip())


def client_address(
    peer: str | None,
    forwarded_for: str | None,
    real_ip: str | None,
    trusted: Sequence[Network],
) -> str:
    """Who is calling: the peer, unless the peer is a trusted proxy; then the nearest address
    in `X-Forwarded-For` that is not itself a trusted proxy (proxies append, so the left part is
    the client's own word), else `X-Real-IP`."""
    if peer is None or not _is_in(peer, trusted):
        return peer or UNKNOWN
    hops = [h.strip() for h in (forwarded_for or "").split(",") if h.strip()]
    vouched = peer
    for hop in reversed(hops):
        if _parse(hop) is None:
            return vouched  # a proxy we trust passed on garbage: go no further left
        if not _is_in(hop, trusted):
            return hop
        vouched = hop
    if hops:
        return vouched  # every hop a trusted proxy: the leftmost is the client
    real = (real_ip or "").strip()
    return real if _parse(real) is not None else peer


def address_bucket(address: str) -> str:
    """What the address counts are kept by: an IPv4 address, an IPv6 /64."""
    ip = _parse(address)
    if ip is None:
        return UNKNOWN
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, IPV6_BUCKET), strict=False))
    return str(ip)


def _parse(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _is_in(address: str, networks: Sequence[Network]) -> bool:
    ip = _parse(address)
    if ip is None:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in net for net in networks)
